"""A stand-in for the Dagster daemon over one night, on a frozen clock against a real test instance.

It evaluates every schedule at its ticks (after downtime, only the latest missed tick, as Dagster's
scheduler does for a schedule without a partition set) and every `_after_upstream` sensor once per
step, with each sensor's cursor carried between evaluations. Every run requested becomes a real run
record (the job's tags, the partition or partition range, the instigator and run-key tags, a RUN_START
event at the moment), and ends, as the test scripts it, with a RUN_SUCCESS or RUN_FAILURE event stamped
with its end time; a successful Task 1 run records its session-keyed partitions as materialised. Unless
told the home is fresh, every session-keyed partition before the walk's first night is stored, so Task 1's
tick requests a plain night; the home is taken to hold whatever the instance records (the home's side
of a catch-up is test_catch_up's). It never drops a request, so a duplicate request shows up as a duplicate launch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.tags import PARTITION_NAME_TAG, RUN_KEY_TAG, SCHEDULE_NAME_TAG, SENSOR_NAME_TAG
from dagster._utils.schedules import cron_string_iterator

from turbomode_dagster import calendar
from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration import schedules
from turbomode_dagster.orchestration.partitions import SESSION_KEYED_ASSETS, run_sessions, session_label
from turbomode_dagster_tests.conftest import trust_the_instance_for_the_home

STEP = dt.timedelta(seconds=60)  # how often the daemon evaluates each sensor (their minimum interval is 30 s)
NY = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Launch:
    """One run requested by automation: when (local HH:MM), which job, by which schedule or sensor."""

    at: str
    job: str
    by: str
    session: str


@dataclass
class Daemon:
    """Evaluates the code location's schedules and sensors as the daemon would, step by step."""

    settings: Settings
    instance: dg.DagsterInstance
    monkeypatch: pytest.MonkeyPatch
    minutes: dict[TaskId, float] = field(default_factory=dict)  # how long each task's runs take (default 10)
    failing: set[TaskId] = field(default_factory=set)
    fresh: bool = False  # no session stored before the walk: Task 1's first tick catches up the history
    launches: list[tuple[dt.datetime, Launch]] = field(default_factory=list)
    skips: dict[str, list[str]] = field(default_factory=dict)
    cursors: dict[str, str | None] = field(default_factory=dict)
    _scheduled_until: dt.datetime | None = None
    _running: list[tuple[dg.DagsterRun, dt.datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.defs = build_definitions(self.settings)
        trust_the_instance_for_the_home(self.monkeypatch)

    def walk(self, start: dt.datetime, end: dt.datetime, down: tuple[dt.datetime, dt.datetime] | None = None) -> None:
        """Step from `start` to `end`; while `down` (start, end) the daemon evaluates nothing, runs still end."""
        now = start
        if self._scheduled_until is None and not self.fresh:
            self._store(calendar.sessions(self.settings.history.start_date, calendar.previous_session(start.date())))
        self._scheduled_until = self._scheduled_until or start - STEP
        while now <= end:
            self._finish_runs(now)
            if not (down and down[0] <= now < down[1]):
                self._evaluate(now)
            now += STEP

    def launched(self) -> list[Launch]:
        """The launches in time order (those in one minute by job name)."""
        return [launch for _, launch in sorted(self.launches, key=lambda item: (item[0], item[1].job))]

    def run_id(self, job: str) -> str:
        """The id of the only run of `job` this night."""
        (run,) = self.instance.get_runs(dg.RunsFilter(job_name=job))
        return run.run_id

    def _evaluate(self, now: dt.datetime) -> None:
        self.monkeypatch.setattr(schedules, "clock", lambda: now)
        repo = self.defs.get_repository_def()
        for schedule in repo.schedule_defs:
            tick = _latest_tick(schedule, self._scheduled_until, now)
            if tick is None:
                continue
            data = evaluate_schedule(schedule, self.instance, tick, repo)
            self._handle(schedule.name, SCHEDULE_NAME_TAG, schedule.job_name, data, now)
        for sensor in repo.sensor_defs:
            if not sensor.name.endswith("_after_upstream"):
                continue
            data = evaluate_sensor(sensor, self.instance, repo, self.cursors.get(sensor.name))
            self.cursors[sensor.name] = data.cursor if data.cursor is not None else self.cursors.get(sensor.name)
            self._handle(sensor.name, SENSOR_NAME_TAG, sensor.job_name, data, now)
        self._scheduled_until = now

    def _handle(self, name: str, tag: str, job_name: str, data, now: dt.datetime) -> None:
        if data.skip_message:
            self.skips.setdefault(name, []).append(data.skip_message)
        for request in data.run_requests:
            self._launch(name, tag, job_name, request, now)

    def _launch(self, name: str, tag: str, job_name: str, request: dg.RunRequest, now: dt.datetime) -> None:
        job = self.defs.resolve_job_def(job_name)
        partition = {PARTITION_NAME_TAG: request.partition_key} if request.partition_key else {}
        tags = {**job.tags, **request.tags, **partition, tag: name}
        tags[RUN_KEY_TAG] = request.run_key
        run = self.instance.create_run_for_job(job_def=job, tags=tags)
        self._event(run, DagsterEventType.RUN_START, now)
        task = next(t for t in TaskId if t.function_name == job_name)
        self._running.append((run, now + dt.timedelta(minutes=self.minutes.get(task, 10))))
        launch = Launch(now.astimezone(NY).strftime("%H:%M"), job_name, name, session_label(tags))
        self.launches.append((now, launch))

    def _finish_runs(self, now: dt.datetime) -> None:
        for run, end in list(self._running):
            if end <= now:
                task = next(t for t in TaskId if t.function_name == run.job_name)
                failed = task in self.failing
                self._event(run, DagsterEventType.RUN_FAILURE if failed else DagsterEventType.RUN_SUCCESS, end)
                self._running.remove((run, end))
                if task is TaskId.INGESTION and not failed:
                    self._store(calendar.sessions(*run_sessions(run.tags)))

    def _store(self, sessions: list[str]) -> None:
        """Record the session-keyed assets as materialised for `sessions`, as a Task 1 run over them does."""
        for key in SESSION_KEYED_ASSETS:
            for session in sessions:
                self.instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=session))

    def _event(self, run: dg.DagsterRun, kind: DagsterEventType, when: dt.datetime) -> None:
        run_event(self.instance, run, kind, when)


def evaluate_schedule(
    schedule: dg.ScheduleDefinition, instance: dg.DagsterInstance, tick: dt.datetime, repo: dg.RepositoryDefinition
):
    """One tick of `schedule`, its context closed after (an open one leaves Dagster's state storage set)."""
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick, repository_def=repo) as context:
        return schedule.evaluate_tick(context)


def evaluate_sensor(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, repo: dg.RepositoryDefinition, cursor: str | None = None
):
    """One evaluation of `sensor` with `cursor`, its context closed after."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repo) as context:
        return sensor.evaluate_tick(context)


def run_event(instance: dg.DagsterInstance, run: dg.DagsterRun, kind: DagsterEventType, when: dt.datetime) -> None:
    """Report a run event (start, success, failure) stamped `when`, as the run worker would at that moment."""
    instance.handle_new_event(
        EventLogEntry(
            error_info=None,
            level=20,
            user_message="",
            run_id=run.run_id,
            timestamp=when.timestamp(),
            dagster_event=DagsterEvent(event_type_value=kind.value, job_name=run.job_name),
        )
    )


def plant_run(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    job_name: str,
    session: str,
    start: dt.datetime,
    end: dt.datetime,
    succeeded: bool = True,
) -> dg.DagsterRun:
    """A real run record of `job_name` for `session` that started at `start` and ended at `end`."""
    job = defs.resolve_job_def(job_name)
    run = instance.create_run_for_job(job_def=job, tags={**job.tags, PARTITION_NAME_TAG: session})
    run_event(instance, run, DagsterEventType.RUN_START, start)
    run_event(instance, run, DagsterEventType.RUN_SUCCESS if succeeded else DagsterEventType.RUN_FAILURE, end)
    return run


def _latest_tick(schedule: dg.ScheduleDefinition, after: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The schedule's latest tick in (after, now], or None."""
    latest = None
    for tick in cron_string_iterator(after.timestamp(), schedule.cron_schedule, schedule.execution_timezone):
        if tick > now:
            return latest
        if tick > after:
            latest = tick
    return latest
