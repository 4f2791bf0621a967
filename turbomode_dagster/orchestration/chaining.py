"""The night's order on Dagster: a schedule and an `<function_name>_after_upstream` sensor per dependent task.

Why schedules plus sensors (and not declarative automation): the rule needs run facts that asset
conditions do not see (an upstream run that *failed* must stop the chain, a task must never be
started twice for one session by automation, a tick missed beyond `misfire_grace_time` must stay
missed), and a schedule keeps the seed's time visible in the UI and in `turbomode status` as its
next tick. The two launchers share one pure rule (`turbomode_dagster.chain.rule`):
- the schedule's tick, at the configured time, starts the task when every upstream run for the session
  succeeded by the tick;
- the sensor (every 30 s) starts it when the last upstream succeeded after the tick, the same night.
Whichever owns a session is fixed by when the upstream finished, so the two never both start it (Dagster
scopes run keys to one schedule or sensor); both use the run key `<function_name>:<session>`, and the
sensor's cursor keeps the sessions it requested or found started by automation (so it stops reading
the instance for them). Upstream state is the latest run of the upstream task for the session: a run
of its job, or an asset-selection run (the UI's Materialize button) that materialises the task's final
asset, tagged with the session or covering a range that ends at it (Task 1's catch-up, a backfill up to
tonight; `partitions.runs_for_session`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.storage.tags import SCHEDULE_NAME_TAG, SENSOR_NAME_TAG

from turbomode_dagster.chain.rule import DEPENDENCIES, Decision, Facts, Launcher, RunState, TaskRun, decide, waiting
from turbomode_dagster.config import ScheduledTask, Settings, TaskId, parse_day_of_week
from turbomode_dagster.orchestration import schedules
from turbomode_dagster.orchestration.partitions import runs_for_session

SENSOR_INTERVAL_SECONDS = 30
CURSOR_SESSIONS = 10  # sessions a sensor remembers as started by automation (the run key covers older ones)
# The asset a task's downstream reads: a run that materialises it for a session is a run of that task.
FINAL_ASSETS: dict[TaskId, dg.AssetKey] = {
    TaskId.INGESTION: dg.AssetKey("training_samples"),  # Task 1 ends with the samples the models train on
    TaskId.ORCHESTRATOR: dg.AssetKey("trained_ensemble"),
    TaskId.OVERNIGHT_SCANNER: dg.AssetKey("overnight_signals"),
    TaskId.BACKTEST_GENERATOR: dg.AssetKey("backtest_report"),
    TaskId.DRIFT_MONITOR: dg.AssetKey("drift_report"),
}
STATES = {
    dg.DagsterRunStatus.SUCCESS: RunState.SUCCEEDED,
    dg.DagsterRunStatus.FAILURE: RunState.FAILED,
    dg.DagsterRunStatus.CANCELED: RunState.FAILED,
}


def waiting_reason(instance: dg.DagsterInstance, settings: Settings, task_id: TaskId, session: str) -> str | None:
    """One line: which upstream the task waits on for `session`, or why it will not start; None if nothing holds it."""
    return waiting(read_facts(instance, settings, task_id, session))


def latest_session(settings: Settings, task_id: TaskId, now: dt.datetime) -> str | None:
    """The session the task's latest tick at or before `now` targets (what `waiting_reason` is asked about)."""
    return schedules.target_session(latest_tick(settings.task(task_id), settings.global_settings.timezone, now))


def read_facts(instance: dg.DagsterInstance, settings: Settings, task_id: TaskId, session: str) -> Facts:
    """The task's switch, the latest run of each upstream task and every run of the task for `session`."""
    records = runs_for_session(instance, session)
    upstream = [_latest(records, task) for task in DEPENDENCIES.get(task_id, ())]
    own = [_task_run(record, task_id) for record in records if _is_run_of(record.dagster_run, task_id)]
    return Facts(task_id, session, upstream, own, settings.task(task_id).enabled)


def _latest(records: Sequence[dg.RunRecord], task_id: TaskId) -> TaskRun:
    """The newest run of `task_id` among `records` (which come newest first), or a NONE state."""
    for record in records:
        if _is_run_of(record.dagster_run, task_id):
            return _task_run(record, task_id)
    return TaskRun(task_id, RunState.NONE)


def _is_run_of(run: dg.DagsterRun, task_id: TaskId) -> bool:
    final = FINAL_ASSETS.get(task_id)
    return run.job_name == task_id.function_name or (final is not None and final in (run.asset_selection or ()))


def _task_run(record: dg.RunRecord, task_id: TaskId) -> TaskRun:
    run = record.dagster_run
    finished = dt.datetime.fromtimestamp(record.end_time, dt.timezone.utc) if record.end_time else None
    by_automation = SCHEDULE_NAME_TAG in run.tags or SENSOR_NAME_TAG in run.tags
    return TaskRun(task_id, STATES.get(run.status, RunState.RUNNING), run.run_id, finished, by_automation)


def latest_tick(task: ScheduledTask, timezone: str, now: dt.datetime) -> dt.datetime:
    """The task's most recent configured time at or before `now`, in `timezone` (a tick within the last week)."""
    local = now.astimezone(ZoneInfo(timezone))
    days = parse_day_of_week(task.schedule.day_of_week)
    for back in range(8):
        day = local.date() - dt.timedelta(days=back)
        tick = dt.datetime.combine(day, dt.time(task.schedule.hour, task.schedule.minute), ZoneInfo(timezone))
        if tick <= local and day.weekday() in days:
            return tick
    raise ValueError(f"task {task.task_id} ({task.function_name}) has no tick in the week before {now.isoformat()}")


def decision_at(facts: Facts | None, settings: Settings, tick: dt.datetime, launcher: Launcher) -> Decision:
    """The rule for the session `tick` targets (None facts: no session), evaluated now (`schedules.clock`)."""
    if facts is None:
        return Decision(False, f"no NYSE session precedes the tick of {tick.isoformat()} on that day")
    grace = settings.global_settings.job_defaults.misfire_grace_time
    if launcher is Launcher.SENSOR:  # the sensor's own cadence is no misfire
        grace = max(grace, SENSOR_INTERVAL_SECONDS)
    return decide(facts, launcher, tick, schedules.clock(), grace)


def dependent_schedule(
    settings: Settings, task_id: TaskId, job: dg.UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    """The task's schedule at its configured time: starts the session when every upstream succeeded by then."""
    task = settings.task(task_id)
    upstream = " and ".join(t.function_name for t in DEPENDENCIES[task_id])

    def request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time
        session = schedules.target_session(tick)
        facts = read_facts(context.instance, settings, task_id, session) if session else None
        return _request(task, decision_at(facts, settings, tick, Launcher.SCHEDULE), session)

    about = (
        f", for the session the tick follows, once {upstream} succeeded for it; if they finish later, "
        f"{task.function_name}_after_upstream starts it."
    )
    return schedules.task_schedule(task, settings, job, about, request)


def after_upstream_sensor(
    settings: Settings, task_id: TaskId, job: dg.UnresolvedAssetJobDefinition
) -> dg.SensorDefinition:
    """The sensor that starts the task right after its upstream, when that finished after the configured time."""
    task = settings.task(task_id)
    upstream = " and ".join(t.function_name for t in DEPENDENCIES[task_id])

    @dg.sensor(
        name=f"{task.function_name}_after_upstream",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING if task.enabled else dg.DefaultSensorStatus.STOPPED,
        description=f"Starts {task.function_name} the same night when {upstream} succeeded after its "
        f"{task.schedule.hour:02d}:{task.schedule.minute:02d} tick; never when an upstream failed; once per session.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        tick = latest_tick(task, settings.global_settings.timezone, schedules.clock())
        session = schedules.target_session(tick)  # = latest_session(...), with the tick kept for the rule
        settled = json.loads(context.cursor) if context.cursor else []
        if session in settled:
            return dg.SkipReason(f"{task.function_name} for {session} was already started by automation")
        facts = read_facts(context.instance, settings, task_id, session) if session else None
        decision = decision_at(facts, settings, tick, Launcher.SENSOR)
        if decision.launch or (facts and any(run.by_automation for run in facts.own_runs)):
            context.update_cursor(json.dumps(sorted({*settled, session})[-CURSOR_SESSIONS:]))
        return _request(task, decision, session)

    return _sensor


def chain_schedules(
    settings: Settings, jobs: Mapping[TaskId, dg.UnresolvedAssetJobDefinition]
) -> list[dg.ScheduleDefinition]:
    """One schedule per partitioned task: the plain tick for a task without upstream, the chained one otherwise."""
    return [
        dependent_schedule(settings, task_id, job)
        if task_id in DEPENDENCIES
        else schedules.partitioned_schedule(settings.task(task_id), settings, job)
        for task_id, job in jobs.items()
    ]


def chain_sensors(
    settings: Settings, jobs: Mapping[TaskId, dg.UnresolvedAssetJobDefinition]
) -> list[dg.SensorDefinition]:
    """The `_after_upstream` sensor of every dependent task."""
    return [after_upstream_sensor(settings, task_id, job) for task_id, job in jobs.items() if task_id in DEPENDENCIES]


def _request(task: ScheduledTask, decision: Decision, session: str | None) -> dg.RunRequest | dg.SkipReason:
    if not decision.launch:
        return dg.SkipReason(decision.reason)
    return dg.RunRequest(run_key=f"{task.function_name}:{session}", partition_key=session)
