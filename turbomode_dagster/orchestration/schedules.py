"""Schedules generated from scheduler_config.json: one per task, at the seed's times and timezone.

A tick targets the NYSE session it follows: a tick after the 16:00 close targets that day's session,
an after-midnight tick (the seed's 00:00 and 00:30 tasks) the previous day's. A tick with no session
to target, a disabled task, or a tick evaluated later than `misfire_grace_time` is skipped with a
reason. The run key is job + session, so a session is never launched twice by its schedule.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg

from turbomode_dagster import calendar
from turbomode_dagster.config import ScheduledTask, Settings

MARKET_CLOSE = dt.time(16, 0)


def clock() -> dt.datetime:
    """The current time (tests replace it to evaluate a tick as the daemon would at a given moment)."""
    return dt.datetime.now(dt.timezone.utc)


def target_session(tick: dt.datetime) -> str | None:
    """The session a tick at `tick` (timezone-aware) works on, or None when that day had no session."""
    local = tick.astimezone(ZoneInfo(calendar.TIMEZONE))
    day = local.date() if local.time() >= MARKET_CLOSE else local.date() - dt.timedelta(days=1)
    return day.isoformat() if calendar.is_session(day) else None


def skip_reason(task: ScheduledTask, settings: Settings, tick: dt.datetime, now: dt.datetime) -> str | None:
    """Why this tick launches nothing, or None when it should run."""
    if not task.enabled:
        return f"task {task.task_id} ({task.function_name}) is disabled in the config"
    grace = settings.global_settings.job_defaults.misfire_grace_time
    late = (now - tick).total_seconds()
    if late > grace:
        return f"tick of {tick.isoformat()} evaluated {late:.0f} s late, beyond misfire_grace_time {grace} s"
    return None


def partitioned_schedule(
    task: ScheduledTask,
    settings: Settings,
    job: dg.UnresolvedAssetJobDefinition,
    upstream: dg.AssetKey | None = None,
) -> dg.ScheduleDefinition:
    """A schedule that requests the session partition its tick follows, once `upstream` has it.

    The seed's tasks wait for their dependency (training for ingestion, the scan for training): a
    tick whose session the upstream asset has not materialised yet is skipped with a reason rather
    than run on yesterday's data.
    """

    @dg.schedule(
        name=f"{task.function_name}_schedule",
        cron_schedule=task.schedule.cron,
        execution_timezone=settings.global_settings.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING if task.enabled else dg.DefaultScheduleStatus.STOPPED,
        description=f"{task.name}: {task.schedule.day_of_week} at {task.schedule.hour:02d}:{task.schedule.minute:02d} "
        f"{settings.global_settings.timezone}, targeting the session the tick follows.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        request = evaluate_tick(task, settings, context.scheduled_execution_time)
        if upstream is None or isinstance(request, dg.SkipReason):
            return request
        if request.partition_key not in context.instance.get_materialized_partitions(upstream):
            return dg.SkipReason(
                f"{upstream.to_user_string()} has no materialisation for {request.partition_key} yet: "
                f"its task has not finished; launch {task.function_name} for that partition once it has"
            )
        return request

    return _schedule


def evaluate_tick(task: ScheduledTask, settings: Settings, tick: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    """The run a partitioned task's tick requests, or why it requests none."""
    reason = skip_reason(task, settings, tick, clock())
    if reason:
        return dg.SkipReason(reason)
    session = target_session(tick)
    if session is None:
        return dg.SkipReason(f"no NYSE session precedes the tick of {tick.isoformat()} on that day")
    return dg.RunRequest(run_key=f"{task.function_name}:{session}", partition_key=session)
