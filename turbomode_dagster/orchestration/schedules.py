"""Schedules generated from scheduler_config.json: one per task, at the seed's times and timezone.

A tick targets the NYSE session it follows: a tick after the 16:00 close targets that day's session,
an after-midnight tick (the seed's 00:00 and 00:30 tasks) the previous day's. A tick with no session
to target, a disabled task, or a tick evaluated later than `misfire_grace_time` is skipped with a
reason. The run key is `<function_name>:<session>`, so a session is never launched twice by its schedule.
Task 1's tick catches up: it requests one run over [first session-keyed partition missing, session]
(Dagster's partition-range tags), or the plain partition when nothing before the session is missing.

This module holds the plain schedule of a task without upstream (Task 1) and the clock and session
helpers; the schedules of the dependent tasks (2-5), which start only after their upstream succeeded
and hand a late upstream over to a sensor, are built in `turbomode_dagster.orchestration.chaining`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import dagster as dg

from turbomode_dagster import calendar
from turbomode_dagster.config import ScheduledTask, Settings, turbomode_home
from turbomode_dagster.orchestration.partitions import SESSION_KEYED_ASSETS, catch_up_range, partition_tags

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


def default_status(task: ScheduledTask) -> dg.DefaultScheduleStatus:
    """Running unless the config disables the task (then it exists, stopped, and its ticks request nothing)."""
    return dg.DefaultScheduleStatus.RUNNING if task.enabled else dg.DefaultScheduleStatus.STOPPED


def when(task: ScheduledTask, settings: Settings) -> str:
    """The task's configured time in words, for descriptions."""
    schedule = task.schedule
    return f"{schedule.day_of_week} at {schedule.hour:02d}:{schedule.minute:02d} {settings.global_settings.timezone}"


TickRequest = Callable[[dg.ScheduleEvaluationContext], "dg.RunRequest | dg.SkipReason"]


def task_schedule(
    task: ScheduledTask, settings: Settings, job: dg.UnresolvedAssetJobDefinition, about: str, request: TickRequest
) -> dg.ScheduleDefinition:
    """The task's schedule at its configured time and timezone; `request` turns a tick into a run or a skip."""

    @dg.schedule(
        name=f"{task.function_name}_schedule",
        cron_schedule=task.schedule.cron,
        execution_timezone=settings.global_settings.timezone,
        job=job,
        default_status=default_status(task),
        description=f"{task.name}: {when(task, settings)}{about}",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        return request(context)

    return _schedule


def partitioned_schedule(
    task: ScheduledTask, settings: Settings, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """The schedule of the task that waits for no other (Task 1, whose job holds every session-keyed asset):
    one run over the sessions missing up to the one its tick follows."""
    return task_schedule(
        task,
        settings,
        job,
        ", targeting the session the tick follows, with every session-keyed partition missing before it, in one run.",
        lambda context: evaluate_tick(task, settings, context.scheduled_execution_time, context.instance),
    )


def evaluate_tick(
    task: ScheduledTask, settings: Settings, tick: dt.datetime, instance: dg.DagsterInstance
) -> dg.RunRequest | dg.SkipReason:
    """The run the tick requests (the session, or the range from the first missing one), or why it requests none."""
    reason = skip_reason(task, settings, tick, clock())
    if reason:
        return dg.SkipReason(reason)
    session = target_session(tick)
    if session is None:
        return dg.SkipReason(f"no NYSE session precedes the tick of {tick.isoformat()} on that day")
    first, _ = catch_up_range(
        instance, list(SESSION_KEYED_ASSETS), settings.history.start_date, session, turbomode_home()
    )
    key = f"{task.function_name}:{session}"
    if first == session:
        return dg.RunRequest(run_key=key, partition_key=session)
    return dg.RunRequest(run_key=key, tags=partition_tags(first, session))
