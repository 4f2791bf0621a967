"""The code location: `defs`, wired from the validated config. Wiring only."""

from __future__ import annotations

import dagster as dg

from turbomode_dagster.config import Settings, TaskId, settings, turbomode_home
from turbomode_dagster.orchestration.assets.adjusted_prices import build_adjusted_prices_asset
from turbomode_dagster.orchestration.assets.backtests import build_backtest_assets
from turbomode_dagster.orchestration.assets.drift import build_drift_assets
from turbomode_dagster.orchestration.assets.features import build_feature_assets
from turbomode_dagster.orchestration.assets.learner_steps import STEP_IO_MANAGER
from turbomode_dagster.orchestration.assets.maintenance import build_maintenance_assets
from turbomode_dagster.orchestration.assets.market_data import build_market_data_assets
from turbomode_dagster.orchestration.assets.models import build_model_assets
from turbomode_dagster.orchestration.assets.scanner import build_scanner_assets
from turbomode_dagster.orchestration.chaining import chain_schedules, chain_sensors
from turbomode_dagster.orchestration.failures import build_failure_sensor
from turbomode_dagster.orchestration.io_managers import ParquetIOManager, SessionDatasetIOManager
from turbomode_dagster.orchestration.jobs import TASK_GROUPS, task_job
from turbomode_dagster.orchestration.maintenance_schedule import maintenance_schedule
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.orchestration.run_tags import asset_selection_run_tagger
from turbomode_dagster.orchestration.sensors import build_retrain_sensor
from turbomode_dagster.orchestration.step_outputs import StepOutputIOManager
from turbomode_dagster.sources.factory import build_chain


def build_definitions(cfg: Settings) -> dg.Definitions:
    """Assets, checks, jobs, schedules and resources implied by `cfg`."""
    jobs = {task: task_job(cfg, task) for task in TASK_GROUPS}
    home = TurboModeHome()
    assets = [
        build_market_data_assets(cfg),
        build_adjusted_prices_asset(cfg),
        *build_feature_assets(cfg),
        build_model_assets(cfg),
        build_scanner_assets(cfg),
        build_backtest_assets(cfg),
        build_drift_assets(cfg),
        build_maintenance_assets(cfg),
    ]
    return dg.Definitions(
        assets=assets,
        jobs=list(jobs.values()),
        schedules=[
            *chain_schedules(cfg, {task: job for task, job in jobs.items() if task != TaskId.WEEKLY_MAINTENANCE}),
            maintenance_schedule(cfg.task(TaskId.WEEKLY_MAINTENANCE), cfg, jobs[TaskId.WEEKLY_MAINTENANCE]),
        ],
        sensors=[
            build_retrain_sensor(jobs[TaskId.ORCHESTRATOR]),
            *chain_sensors(cfg, jobs),
            asset_selection_run_tagger(cfg, assets),
            build_failure_sensor(),
        ],
        resources={
            "turbomode": home,
            "master_db": MasterDBWriteAccess(turbomode=home),
            "source_chain": build_chain(cfg, turbomode_home()),
            "parquet_io_manager": ParquetIOManager(),
            "session_dataset_io_manager": SessionDatasetIOManager(),
            STEP_IO_MANAGER: StepOutputIOManager(),
        },
    )


defs = build_definitions(settings())
