"""The seed's retry and timeout settings as Dagster retry policies and run tags."""

from __future__ import annotations

import dagster as dg

from turbomode_dagster.config import ScheduledTask

TASK_TAG = "turbomode/task"
MAX_RUNTIME_TAG = "dagster/max_runtime"  # the run tag run monitoring enforces


def retry_policy_for(task: ScheduledTask) -> dg.RetryPolicy | None:
    """retry_on_failure/max_retries -> exponential backoff from 30 s with jitter; None when off."""
    if not task.retry_on_failure or task.max_retries == 0:
        return None
    return dg.RetryPolicy(
        max_retries=task.max_retries, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    )


def run_tags_for(task: ScheduledTask) -> dict[str, str]:
    """timeout_minutes -> dagster/max_runtime (enforced by run monitoring); the task tag for run queueing."""
    return {MAX_RUNTIME_TAG: str(task.timeout_minutes * 60), TASK_TAG: task.function_name}
