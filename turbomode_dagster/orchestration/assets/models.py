"""Task 2, part 2 as assets: the stacked ensemble trained walk-forward, its SHAP log and registry entry.

`trained_ensemble` holds the out-of-sample metrics table (every model next to the always-HOLD and
class-prior baselines); `oof_predictions` holds every outer validation fold's probabilities for each
base learner and the ensemble, which the backtest trades on. Training writes only TurboMode.db,
`$TURBOMODE_HOME/models/` and its two per-night Parquet files. By default it is one step; with
`models.learner_steps` each base learner fits in its own step (`learner_steps.py`), with the same bytes.
"""

import dagster as dg

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.models.ensemble import train_ensemble
from turbomode_dagster.orchestration.assets.learner_steps import build_learner_step_assets
from turbomode_dagster.orchestration.assets.training import GROUP, learner_specs, train_and_publish, training_outs
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.storage.session_dataset import SessionDataset


def build_model_assets(settings: Settings) -> dg.AssetsDefinition:
    """The training multi-asset over session partitions: one step, or one per learner plus the stacking."""
    if settings.models.learner_steps:
        return build_learner_step_assets(settings)

    @dg.multi_asset(
        name="model_training",
        partitions_def=trading_days(settings.history.start_date),
        group_name=GROUP,
        pool=DATABASE_WRITE_POOL,
        outs=training_outs(),
        ins={"training_samples": dg.AssetIn()},
        retry_policy=retry_policy_for(settings.task(TaskId.ORCHESTRATOR)),
    )
    def model_training(context: dg.AssetExecutionContext, turbomode: TurboModeHome, training_samples: SessionDataset):
        cfg = turbomode.settings()

        def train(window):
            return train_ensemble(
                window,
                learner_specs(cfg),
                horizon=cfg.labels.horizon,
                n_folds=cfg.models.n_folds,
                seed=cfg.models.seed,
                max_train_rows=cfg.models.max_train_rows,
                meta_max_rows=cfg.models.meta_max_rows,
            )

        yield from train_and_publish(context, turbomode, training_samples, train)

    return model_training
