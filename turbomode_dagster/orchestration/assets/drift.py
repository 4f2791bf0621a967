"""Task 5 as an asset: drift of session D against the champion's baseline, and the retraining flag.

Partition D reads the universe's stored features (feature_panel) and adjusted closes (adjusted_prices)
up to D, scores them with the champion, compares the last windows ending at D with the baseline stored
when the champion was trained, checks matured performance, and replaces D's rows in drift_monitoring
(and its flag in retrain_flags), so a rerun leaves both tables as one run did.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.drift.baseline import DriftBaseline
from turbomode_dagster.drift.chart import drift_png
from turbomode_dagster.drift.report import flag_reason, monitoring_rows, severity
from turbomode_dagster.drift.rule import FlagRule
from turbomode_dagster.drift.session import SessionDrift, evaluate_sessions
from turbomode_dagster.features import make_labels
from turbomode_dagster.models.ensemble import predict
from turbomode_dagster.models.registry import load_ensemble
from turbomode_dagster.orchestration.metadata import png_markdown, preview_table
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.storage.drift_log import DriftLog, RetrainFlag
from turbomode_dagster.storage.session_dataset import SessionDataset
from turbomode_dagster.storage.turbomode_db import ModelRecord, TurboModeDB

GROUP = "drift"
HISTORY_SESSIONS = 20  # sessions of the drift log drawn in the heatmap
# Two narrow tables (same rows, most severe first) rather than one the UI clips.
TABLE_COLUMNS = ["feature", "status", "psi", "threshold"]
TEST_COLUMNS = {"feature": "feature", "kl_divergence": "kl", "ks_statistic": "ks", "ks_pvalue": "ks_pvalue"}
DIGITS = 4


def build_drift_assets(settings: Settings) -> dg.AssetsDefinition:
    """drift_report over session partitions."""

    @dg.asset(
        partitions_def=trading_days(settings.history.start_date),
        group_name=GROUP,
        pool=DATABASE_WRITE_POOL,
        kinds={"pandas", "sqlite"},
        deps=[dg.AssetKey("trained_ensemble"), dg.AssetKey("backtest_report")],
        retry_policy=retry_policy_for(settings.task(TaskId.DRIFT_MONITOR)),
        description="Drift of the session's last windows against the champion's training baseline: PSI, KL "
        "divergence and KS per feature and for p_buy/p_sell, alert levels calibrated on the training window, "
        "persistence, the volatility-regime check (cross-sectional return dispersion), matured performance, and "
        "the retraining flag; tables drift_monitoring and retrain_flags in TurboMode.db.",
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        turbomode: TurboModeHome,
        feature_panel: SessionDataset,
        adjusted_prices: SessionDataset,
    ) -> dg.MaterializeResult:
        cfg = turbomode.settings()
        day = context.partition_key
        db = TurboModeDB.at_home(turbomode.path())
        champion, baseline = _champion_and_baseline(db, day)
        features = feature_panel.read(end=day)
        closes = adjusted_prices.read(end=day, columns=["symbol", "date", "close"])
        result = _evaluate(features, closes, cfg, champion, baseline, day)
        rows = monitoring_rows(result, champion.model_version)
        log = DriftLog(db)
        flag = log.replace_session(day, rows, flag_reason(result))
        context.log.info(_summary(result, flag))
        metadata = _metadata(result, rows, flag, log, day)
        metadata["turbomode_db_bytes"] = dg.MetadataValue.int(turbomode.stored_bytes(db.path))
        return dg.MaterializeResult(metadata=metadata)

    return drift_report


def _champion_and_baseline(db: TurboModeDB, day: str) -> tuple[ModelRecord, DriftBaseline]:
    champion = db.champion()
    if champion is None:
        raise dg.Failure(
            description=f"no champion model in {db.path}: train first (job run_orchestrator for {day})",
            allow_retries=False,
        )
    stored = DriftLog(db).baseline(champion.model_version)
    if stored is None:
        raise dg.Failure(
            description=f"the champion {champion.model_version} has no drift baseline (trained before Task 5 "
            f"existed): retrain it (job run_orchestrator) to store one",
            allow_retries=False,
        )
    return champion, DriftBaseline.from_json(stored)


def _evaluate(
    features: pd.DataFrame,
    closes: pd.DataFrame,
    cfg: Settings,
    champion: ModelRecord,
    baseline: DriftBaseline,
    day: str,
) -> SessionDrift:
    """Stored features and labels (from adjusted closes) up to `day`, scored by the champion, judged by the rule."""
    labels = make_labels(closes, cfg.labels.horizon, cfg.labels.sell_threshold, cfg.labels.buy_threshold)
    ensemble = load_ensemble(Path(champion.artifact_path))
    try:
        (result,) = evaluate_sessions(
            baseline,
            features,
            labels,
            lambda rows: predict(ensemble, rows),
            [day],
            FlagRule.from_config(cfg.drift),
            cfg.labels.horizon,
            cfg.drift.performance_sessions,
        )
    except (LookupError, ValueError) as exc:
        raise dg.Failure(description=f"drift of {day} cannot be computed: {exc}", allow_retries=False) from exc
    return result


def _summary(result: SessionDrift, flag: RetrainFlag | None) -> str:
    alerting = result.decision.features_alerting
    verdict = f"retraining flag {flag.flag_id} ({flag.status})" if flag else "no retraining flag"
    return f"{result.day}: {len(alerting)} features on alert ({', '.join(alerting) or 'none'}); {verdict}"


def _metadata(
    result: SessionDrift, rows: pd.DataFrame, flag: RetrainFlag | None, log: DriftLog, day: str
) -> dict[str, object]:
    """The severity-sorted table, the decision with its reason, the picture, and trended numbers."""
    decision = result.decision
    history = log.recent_rows(day, HISTORY_SESSIONS)
    performance = decision.performance
    return {
        "model_version": str(rows["model_version"].iloc[0]),
        "features_alerting": dg.MetadataValue.int(len(decision.features_alerting)),
        "share_alerting": dg.MetadataValue.float(decision.share_alerting),
        "flag_raised": dg.MetadataValue.bool(flag is not None),
        "decision": dg.MetadataValue.md(_decision_text(result, flag)),
        "worst_severity": dg.MetadataValue.float(float(severity(rows).max())),
        "dispersion_ratio": dg.MetadataValue.float(float(decision.volatility["dispersion_ratio"])),
        "matured_rank_ic": dg.MetadataValue.float(float(performance.get("rank_ic", float("nan")))),
        "matured_sessions": dg.MetadataValue.int(int(performance.get("n_dates", 0))),
        "class_mix_change": dg.MetadataValue.json({k: round(v, 4) for k, v in result.class_mix_change.items()}),
        "drift_picture": png_markdown(
            drift_png(rows, history, f"{day}: drift against the champion's baseline"), "PSI by feature"
        ),
        "drift_table": preview_table(rows[TABLE_COLUMNS].round(DIGITS), len(rows)),
        "drift_tests": preview_table(rows[list(TEST_COLUMNS)].rename(columns=TEST_COLUMNS).round(DIGITS), len(rows)),
    }


def _decision_text(result: SessionDrift, flag: RetrainFlag | None) -> str:
    decision = result.decision
    if flag is None:
        ratio, level = decision.volatility["dispersion_ratio"], decision.volatility["dispersion_level"]
        return (
            f"**No retraining flag.** {decision.share_alerting:.0%} of features on alert; return dispersion "
            f"x{ratio:.2f} against the sessions before (level x{level:.2f}); no rule fired."
        )
    return f"**Retraining flag `{flag.flag_id}` ({flag.status}).** " + "; ".join(decision.reasons)
