"""One Dagster job per seed task, named by the seed's function_name (its per-task endpoint)."""

from __future__ import annotations

import dagster as dg

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.orchestration.assets.backtests import GROUP as BACKTESTS
from turbomode_dagster.orchestration.assets.drift import GROUP as DRIFT
from turbomode_dagster.orchestration.assets.features import GROUP as FEATURES
from turbomode_dagster.orchestration.assets.maintenance import GROUP as MAINTENANCE
from turbomode_dagster.orchestration.assets.market_data import GROUP as MARKET_DATA
from turbomode_dagster.orchestration.assets.scanner import GROUP as SCANNER
from turbomode_dagster.orchestration.assets.training import GROUP as MODELS
from turbomode_dagster.orchestration.executors import executor_for
from turbomode_dagster.orchestration.retries import run_tags_for

# Which asset groups each task materialises. Task 1 is the whole session-keyed layer (partition D = session D's
# rows), so one run can cover a range of sessions (a catch-up, a backfill: range tags); Tasks 2-5 are per night
# (tag dagster/partition) and Dagster cannot run a per-night asset over a range; Task 6 is unpartitioned.
TASK_GROUPS: dict[TaskId, tuple[str, ...]] = {
    TaskId.INGESTION: (MARKET_DATA, FEATURES),
    TaskId.ORCHESTRATOR: (MODELS,),
    TaskId.OVERNIGHT_SCANNER: (SCANNER,),
    TaskId.BACKTEST_GENERATOR: (BACKTESTS,),
    TaskId.DRIFT_MONITOR: (DRIFT,),
    TaskId.WEEKLY_MAINTENANCE: (MAINTENANCE,),
}


def task_job(settings: Settings, task_id: TaskId) -> dg.UnresolvedAssetJobDefinition:
    """The asset job for one task, with its timeout and queueing tags and its executor from the config."""
    task = settings.task(task_id)
    return dg.define_asset_job(
        name=task.function_name,
        selection=dg.AssetSelection.groups(*TASK_GROUPS[task_id]),
        description=f"Task {task.task_id}: {task.name} ({', '.join(TASK_GROUPS[task_id])}). "
        f"Seed endpoint {task.endpoint}.",
        tags=run_tags_for(task),
        executor_def=executor_for(settings.compute),
    )
