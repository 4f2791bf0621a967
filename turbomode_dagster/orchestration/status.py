"""The seed's GET /scheduler/status document, read from the Dagster instance and TurboMode.db.

Keys as in the seed: `running` (the scheduler and sensor daemons' heartbeats are fresh), `version` (the
config's), `jobs` (one per configured task: `id` task_N, `name`, `next_run` in the config's timezone, plus
whether it is enabled in the config, whether its schedule is on in the instance, and `waiting`: which
upstream it waits on, or why it will not start, for the latest completed session, from
`chaining.waiting_reason`), `last_runs` and `last_results` by task id "1".."6" (the latest run carrying the
task's tag: when it started, its status, its session (or `A...B` for a run over a range) and the task's
own numbers from its materialisations), and
`errors` (the latest recorded failure per task with its root cause, time, run and session).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.remote_representation.external import RemoteRepository
from dagster._daemon.controller import get_daemon_statuses
from dagster._daemon.daemon import SchedulerDaemon, SensorDaemon
from dagster._utils.schedules import get_next_cron_tick

from turbomode_dagster import calendar
from turbomode_dagster.config import ScheduledTask, Settings, TaskId
from turbomode_dagster.orchestration.chaining import waiting_reason
from turbomode_dagster.orchestration.control import RUNNING, state_of
from turbomode_dagster.orchestration.metadata import metadata_by_asset
from turbomode_dagster.orchestration.partitions import session_label
from turbomode_dagster.orchestration.retries import TASK_TAG
from turbomode_dagster.storage.run_failures import RunFailureLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB
from turbomode_dagster.task_results import task_numbers

# The daemons whose heartbeats say the schedules and sensors are being evaluated.
DAEMONS = (SchedulerDaemon.daemon_type(), SensorDaemon.daemon_type())


def scheduler_status(
    instance: dg.DagsterInstance,
    settings: Settings,
    repository: RemoteRepository,
    home: Path,
    now: dt.datetime,
) -> dict[str, Any]:
    """The status document at `now` (timezone-aware)."""
    zone = ZoneInfo(settings.global_settings.timezone)
    session = calendar.latest_completed_session(now)
    tasks = sorted(settings.scheduled_tasks, key=lambda t: t.task_id)
    latest = {t.task_id: _latest_run(instance, t) for t in tasks}
    document = {
        "running": daemons_running(instance, now),
        "version": settings.version,
        "jobs": [
            _job(
                instance,
                settings,
                repository,
                t,
                now,
                zone,
                waiting_reason(instance, settings, TaskId(t.task_id), session),
            )
            for t in tasks
        ],
        "last_runs": {str(i): _local(_started(r), zone) for i, r in latest.items() if r is not None},
        "last_results": {str(i): _result(instance, i, r) for i, r in latest.items() if r is not None},
        "errors": {
            str(task): {
                "timestamp": _local(dt.datetime.fromisoformat(f.failed_at).timestamp(), zone),
                "error": f.error,
                "run_id": f.run_id,
                "job": f.job_name,
                "session": f.session,
                "step": f.step,
            }
            for task, f in RunFailureLog(TurboModeDB.at_home(home)).latest_by_task().items()
        },
    }
    return _finite(document)


def daemons_running(instance: dg.DagsterInstance, now: dt.datetime) -> bool:
    """Whether the scheduler and sensor daemons are alive by Dagster's own rule (the UI's daemon page):
    a heartbeat within the 30 s interval plus Dagster's 30 min tolerance."""
    statuses = get_daemon_statuses(instance, DAEMONS, curr_time_seconds=now.timestamp(), ignore_errors=True)
    return all(s.healthy for s in statuses.values())


def _job(
    instance: dg.DagsterInstance,
    settings: Settings,
    repository: RemoteRepository,
    task: ScheduledTask,
    now: dt.datetime,
    zone: ZoneInfo,
    waiting: str | None,
) -> dict[str, Any]:
    schedules = [s for s in repository.get_schedules() if s.job_name == task.function_name]
    state = state_of(instance, schedules[0]) if schedules else "absent"
    next_run = None
    if task.enabled and state == RUNNING:
        tick = get_next_cron_tick(task.schedule.cron, now, settings.global_settings.timezone)
        next_run = tick.astimezone(zone).isoformat()
    return {
        "id": f"task_{task.task_id}",
        "name": task.name,
        "next_run": next_run,
        "function": task.function_name,
        "enabled": task.enabled,
        "schedule": state,
        "waiting": waiting,
    }


def _latest_run(instance: dg.DagsterInstance, task: ScheduledTask) -> dg.RunRecord | None:
    records = instance.get_run_records(dg.RunsFilter(tags={TASK_TAG: task.function_name}), limit=1)
    return records[0] if records else None


def _started(record: dg.RunRecord) -> float:
    return record.start_time or record.create_timestamp.timestamp()


def _result(instance: dg.DagsterInstance, task_id: int, record: dg.RunRecord) -> dict[str, Any]:
    run = record.dagster_run
    entries = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    assets = metadata_by_asset(e.asset_materialization for e in entries if e.asset_materialization is not None)
    return {
        "status": run.status.value.lower(),
        "run_id": run.run_id,
        "session": session_label(run.tags),
        **task_numbers(task_id, assets),
    }


def _local(timestamp: float, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(timestamp, zone).isoformat(timespec="seconds")


def _finite(value: Any) -> Any:
    """The document with NaN and infinities as None, so it is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
