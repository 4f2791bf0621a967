"""Task 2, part 2 as assets: the stacked ensemble trained walk-forward, its SHAP log and registry entry.

`trained_ensemble` holds the out-of-sample metrics table (every model next to the always-HOLD and
class-prior baselines); `oof_predictions` holds every outer validation fold's probabilities for each
base learner and the ensemble, which the backtest trades on. Training reads the Master DB only
through the feature assets and writes only TurboMode.db and `$TURBOMODE_HOME/models/`.
"""

import datetime as dt
import traceback

import dagster as dg
import pandas as pd

import turbomode_dagster
from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.drift.baseline import build_baseline, monitored_features
from turbomode_dagster.models.ensemble import ENSEMBLE, EnsembleResult, feature_columns, train_ensemble
from turbomode_dagster.models.explain import ensemble_importance
from turbomode_dagster.models.learners import DEFAULT_LEARNERS, LearnerSpec
from turbomode_dagster.models.registry import publish_model
from turbomode_dagster.orchestration.metadata import preview_table
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.storage.drift_log import DriftLog
from turbomode_dagster.storage.turbomode_db import TrainingRun, TurboModeDB

GROUP = "models"
METRIC_COLUMNS = ["log_loss", "balanced_accuracy", "macro_f1", "auc_ovr", "rank_ic"]


def learner_specs(settings: Settings) -> tuple[LearnerSpec, ...]:
    """The configured base learners, or the built-in eight when the config lists none."""
    if not settings.models.learners:
        return DEFAULT_LEARNERS
    return tuple(LearnerSpec.from_dict(learner.model_dump()) for learner in settings.models.learners)


def build_model_assets(settings: Settings) -> dg.AssetsDefinition:
    """The training multi-asset over session partitions."""

    @dg.multi_asset(
        name="model_training",
        partitions_def=trading_days(settings.history.start_date),
        group_name=GROUP,
        outs={
            "trained_ensemble": dg.AssetOut(
                io_manager_key="parquet_io_manager",
                kinds={"xgboost", "scikit-learn", "sqlite"},
                description="The 8 base learners plus a multinomial logistic meta-learner, trained with "
                "purged walk-forward folds; stored value: out-of-sample metrics of every model and the "
                "always-HOLD and class-prior baselines. Registered (and promoted if it earns it) in "
                "TurboMode.db, artifacts under $TURBOMODE_HOME/models/<model_version>/.",
            ),
            "oof_predictions": dg.AssetOut(
                io_manager_key="parquet_io_manager",
                kinds={"pandas", "parquet"},
                description="Out-of-fold probabilities (symbol, date, model, fold, p_sell, p_hold, p_buy) "
                "for every outer validation fold, per base learner and for the ensemble.",
            ),
        },
        ins={"training_samples": dg.AssetIn()},
        retry_policy=retry_policy_for(settings.task(TaskId.ORCHESTRATOR)),
    )
    def model_training(context: dg.AssetExecutionContext, turbomode: TurboModeHome, training_samples: pd.DataFrame):
        cfg = turbomode.settings()
        home = turbomode.path()
        db = TurboModeDB.at_home(home)
        run = TrainingRun(run_id=context.run.run_id, started_at=_now(), status="running")
        db.record_training_run(run)
        try:
            result = train_ensemble(
                training_samples,
                learner_specs(cfg),
                horizon=cfg.labels.horizon,
                n_folds=cfg.models.n_folds,
                seed=cfg.models.seed,
            )
            record, decision = publish_model(home, db, training_samples, result, turbomode_dagster.__version__)
            features = training_samples[feature_columns(training_samples)]
            importance = ensemble_importance(
                result.ensemble.base_models, features, max_rows=cfg.models.shap_rows, seed=cfg.models.seed
            )
            db.replace_shap(record.model_version, importance)
            resolved = record_drift_baseline(db, record.model_version, training_samples, result, cfg)
        except Exception as exc:
            db.record_training_run(
                TrainingRun(
                    run_id=run.run_id,
                    started_at=run.started_at,
                    status="failed",
                    finished_at=_now(),
                    sample_count=len(training_samples),
                    error="".join(traceback.format_exception_only(exc)).strip(),
                )
            )
            raise
        metrics = result.metrics.reset_index()
        db.record_training_run(
            TrainingRun(
                run_id=run.run_id,
                started_at=run.started_at,
                status="succeeded",
                model_version=record.model_version,
                finished_at=_now(),
                sample_count=len(training_samples),
                metrics=record.metrics,
            )
        )
        context.log.info(f"{record.model_version}: {decision.reason}")
        if resolved:
            context.log.info(f"retraining flags resolved by {record.model_version}: {', '.join(resolved)}")
        top = importance[(importance["rank"] <= 10) & (importance["class_label"] == "BUY")]
        yield dg.Output(
            metrics,
            output_name="trained_ensemble",
            metadata={
                "model_version": record.model_version,
                "status": record.status,
                "promotion": dg.MetadataValue.json(decision.to_dict()),
                "samples": len(training_samples),
                "ensemble_log_loss": float(result.metrics.loc[ENSEMBLE, "log_loss"]),
                "metrics": preview_table(metrics[["model", *[c for c in METRIC_COLUMNS if c in metrics]]], 20),
                "shap_top_features_buy": preview_table(top, 30),
                "artifact_path": dg.MetadataValue.path(record.artifact_path),
            },
        )
        yield dg.Output(
            result.oof,
            output_name="oof_predictions",
            metadata={"rows": len(result.oof), "folds": int(result.oof["fold"].nunique())},
        )

    return model_training


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
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
