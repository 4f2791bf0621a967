"""Task 2's training as Dagster sees it, shared by both shapes of the step: the window, the publish, the records.

`model_training` runs in one step by default, or as one step per base learner plus a stacking step
(`models.learner_steps`). Either way the training window is every sample whose label matured by the
night, read from the training_samples dataset; the training run is recorded in TurboMode.db; and the
step that stacks the learners publishes the model, its SHAP log and drift baseline and yields
`trained_ensemble` (the out-of-sample metrics) and `oof_predictions`.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd

import turbomode_dagster
from turbomode_dagster.config import Settings
from turbomode_dagster.drift.baseline import build_baseline, monitored_features
from turbomode_dagster.models.chart import shap_png
from turbomode_dagster.models.ensemble import ENSEMBLE, EnsembleResult, feature_columns
from turbomode_dagster.models.explain import ensemble_importance
from turbomode_dagster.models.learners import DEFAULT_LEARNERS, LearnerSpec
from turbomode_dagster.models.metrics_note import balanced_accuracy_note
from turbomode_dagster.models.registry import PromotionDecision, publish_model
from turbomode_dagster.models.shap_summary import ensemble_top_features, learner_top_features
from turbomode_dagster.orchestration.metadata import png_markdown, preview_table
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.storage.drift_log import DriftLog
from turbomode_dagster.storage.session_dataset import SessionDataset
from turbomode_dagster.storage.turbomode_db import ModelRecord, TrainingRun, TurboModeDB

GROUP = "models"
# Two narrow tables rather than one the UI clips: the scores promotion judges, then the argmax-based ones.
SCORE_COLUMNS = ["log_loss", "rank_ic", "rank_ic_se"]
CLASSIFICATION_COLUMNS = ["balanced_accuracy", "macro_f1", "auc_ovr"]
TRENDED_METRICS = ["log_loss", "rank_ic", "balanced_accuracy"]
METRIC_DIGITS = 4
SHAP_TOP = 10
Train = Callable[[pd.DataFrame], EnsembleResult]


def learner_specs(settings: Settings) -> tuple[LearnerSpec, ...]:
    """The configured base learners, or the built-in eight when the config lists none."""
    if not settings.models.learners:
        return DEFAULT_LEARNERS
    return tuple(LearnerSpec.from_dict(learner.model_dump()) for learner in settings.models.learners)


def training_outs() -> dict[str, dg.AssetOut]:
    """The two assets training produces, both stored one Parquet file per night."""
    return {
        "trained_ensemble": dg.AssetOut(
            io_manager_key="parquet_io_manager",
            kinds={"xgboost", "scikit-learn", "sqlite"},
            description="The base learners plus a multinomial logistic meta-learner, trained with purged "
            "walk-forward folds; stored value: out-of-sample metrics of every model and the always-HOLD and "
            "class-prior baselines. Registered (and promoted if it earns it) in TurboMode.db, artifacts "
            "under $TURBOMODE_HOME/models/<model_version>/.",
        ),
        "oof_predictions": dg.AssetOut(
            io_manager_key="parquet_io_manager",
            kinds={"pandas", "parquet"},
            description="Out-of-fold probabilities (symbol, date, model, fold, p_sell, p_hold, p_buy) "
            "for every outer validation fold, per base learner and for the ensemble.",
        ),
    }


def train_and_publish(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    turbomode: TurboModeHome,
    samples: SessionDataset,
    train: Train,
) -> Iterator[dg.Output]:
    """Train on the night's window with `train`, publish, explain and baseline the model; yield both assets.

    The training run is recorded running, then succeeded or failed with the error.
    """
    cfg = turbomode.settings()
    window = training_window(samples, context.partition_key)
    home = turbomode.path()
    db = TurboModeDB.at_home(home)
    started_at = db.start_training_run(context.run.run_id, _now())
    try:
        result = train(window)
        record, decision = publish_model(home, db, window, result, turbomode_dagster.__version__)
        importance = ensemble_importance(
            result.ensemble.base_models,
            window,
            max_rows=cfg.models.shap_rows,
            seed=cfg.models.seed,
            features=result.ensemble.feature_names,
        )
        db.replace_shap(record.model_version, importance)
        resolved = record_drift_baseline(db, record.model_version, window, result, cfg)
    except Exception as exc:
        record_failed_run(db, context.run.run_id, len(window), exc)
        raise
    db.record_training_run(
        TrainingRun(
            run_id=context.run.run_id,
            started_at=started_at,
            status="succeeded",
            model_version=record.model_version,
            finished_at=_now(),
            sample_count=len(window),
            metrics=record.metrics,
        )
    )
    context.log.info(f"{record.model_version}: {decision.reason}")
    if resolved:
        context.log.info(f"retraining flags resolved by {record.model_version}: {', '.join(resolved)}")
    yield dg.Output(
        result.metrics.reset_index(),
        output_name="trained_ensemble",
        metadata={
            **_metadata(record, decision, result, importance, len(window)),
            "artifact_bytes": dg.MetadataValue.int(turbomode.stored_bytes(record.artifact_path)),
        },
    )
    yield dg.Output(
        result.oof,
        output_name="oof_predictions",
        metadata={
            "rows": dg.MetadataValue.int(len(result.oof)),
            "folds": dg.MetadataValue.int(int(result.oof["fold"].nunique())),
        },
    )


def record_failed_run(db: TurboModeDB, run_id: str, samples: int, exc: BaseException) -> None:
    """Mark the run's training failed, with the error's one-line form."""
    db.fail_training_run(run_id, _now(), samples, "".join(traceback.format_exception_only(exc)).strip())


def _metadata(
    record: ModelRecord, decision: PromotionDecision, result: EnsembleResult, importance: pd.DataFrame, samples: int
) -> dict[str, object]:
    """The promotion, metrics in two narrow tables with the note on balanced accuracy, SHAP per class."""
    metrics = result.metrics.reset_index().round(METRIC_DIGITS)
    ensemble = result.metrics.loc[ENSEMBLE]
    top = ensemble_top_features(importance, SHAP_TOP)
    by_learner = learner_top_features(importance)
    shap: dict[str, object] = {}
    if not top.empty:
        shap["shap_picture"] = png_markdown(
            shap_png(top, f"{record.model_version}: top features per class, mean over base learners"),
            "SHAP bars per class",
        )
    shap["shap_by_class"] = preview_table(top, len(top))
    shap["shap_by_learner"] = preview_table(by_learner, len(by_learner))
    return {
        "model_version": record.model_version,
        "status": record.status,
        "promotion": dg.MetadataValue.json(decision.to_dict()),
        "samples": dg.MetadataValue.int(samples),
        **{f"ensemble_{m}": dg.MetadataValue.float(float(ensemble[m])) for m in TRENDED_METRICS},
        "about_the_metrics": dg.MetadataValue.md(balanced_accuracy_note(result.metrics, result.oof)),
        "metrics": preview_table(metrics[["model", *SCORE_COLUMNS]], len(metrics)),
        "metrics_classification": preview_table(metrics[["model", *CLASSIFICATION_COLUMNS]], len(metrics)),
        **shap,
        "artifact_path": dg.MetadataValue.path(record.artifact_path),
    }


def training_window(samples: SessionDataset, day: str) -> pd.DataFrame:
    """Every sample whose label matured by `day`, in (symbol, date) order, without the maturity key.

    A fixed order and the columns training always had keep the model version and artifacts the same
    bytes for the same samples.
    """
    window = samples.read(end=day)
    del window[samples.key]  # in place: drop() would copy the whole window
    order = window[["symbol", "date"]].sort_values(["symbol", "date"], kind="stable").index.to_numpy()
    # Reorder one column at a time, so the peak is the window plus one column rather than two windows.
    for column in window.columns:
        window[column] = window[column].array.take(order)
    return window


def record_drift_baseline(
    db: TurboModeDB, version: str, samples: pd.DataFrame, result: EnsembleResult, cfg: Settings
) -> list[str]:
    """Store the version's drift baseline (training window, out-of-fold predictions, skill); resolve flags.

    Returns the retraining flags this newly registered version resolves.
    """
    scored = result.oof[(result.oof["model"] == ENSEMBLE) & (result.oof["fold"] >= result.folds[1].number)]
    skill = result.metrics.loc[ENSEMBLE, ["rank_ic", "rank_ic_se", "log_loss"]].to_dict()
    baseline = build_baseline(
        version,
        samples,
        monitored_features(feature_columns(samples)),
        scored,
        skill,
        cfg.drift.window_sessions,
        cfg.models.seed,
    )
    log = DriftLog(db)
    log.store_baseline(version, baseline.to_json())
    return log.resolve_flags(version)


def _now() -> str:
    """UTC now, to the second, as the training_runs table stores it."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
