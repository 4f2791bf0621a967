"""Task 6's schedule: unpartitioned, at the config's time (Sunday 02:00 New York), stopped when disabled.

Like the partitioned schedules it skips a tick evaluated later than `misfire_grace_time`
(`schedules.skip_reason`), and keys each run by its tick, so a tick never launches maintenance twice.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from turbomode_dagster.config import ScheduledTask, Settings
from turbomode_dagster.orchestration import schedules


def maintenance_schedule(
    task: ScheduledTask, settings: Settings, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """The weekly maintenance schedule for `job`."""
    return schedules.task_schedule(
        task,
        settings,
        job,
        ".",
        lambda context: maintenance_tick(task, settings, context.scheduled_execution_time or schedules.clock()),
    )


def maintenance_tick(task: ScheduledTask, settings: Settings, tick: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    """The run a tick requests, or why it requests none."""
    reason = schedules.skip_reason(task, settings, tick, schedules.clock())
    if reason:
        return dg.SkipReason(reason)
    return dg.RunRequest(run_key=f"{task.function_name}:{tick.isoformat()}")
