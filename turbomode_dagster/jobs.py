"""One Dagster job per seed task, named by the seed's function_name (its per-task endpoint)."""

from __future__ import annotations

import dagster as dg

from turbomode_dagster.assets.features import GROUP as FEATURES
from turbomode_dagster.assets.market_data import GROUP as MARKET_DATA
from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.retries import run_tags_for


def ingestion_job(settings: Settings) -> dg.UnresolvedAssetJobDefinition:
    """Task 1: the market-data assets and their checks for one session (tag dagster/partition)."""
    task = settings.task(TaskId.INGESTION)
    return dg.define_asset_job(
        name=task.function_name,
        selection=dg.AssetSelection.groups(MARKET_DATA),
        description=f"Task {task.task_id}: {task.name}. Seed endpoint {task.endpoint}.",
        tags=run_tags_for(task),
    )


def orchestrator_job(settings: Settings) -> dg.UnresolvedAssetJobDefinition:
    """Task 2: features, training samples (and, as they land, models, SHAP and the registry) for a session."""
    task = settings.task(TaskId.ORCHESTRATOR)
    return dg.define_asset_job(
        name=task.function_name,
        selection=dg.AssetSelection.groups(FEATURES),
        description=f"Task {task.task_id}: {task.name}. Seed endpoint {task.endpoint}.",
        tags=run_tags_for(task),
    )
