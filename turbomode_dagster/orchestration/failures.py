"""The seed's error record: a run-failure sensor that keeps every failed TurboMode run in TurboMode.db.

`record_run_failures` watches every job of the code location (on by default, like the rest of the night).
For a failed run it stores the task, the session, the failing step and the step's own error (Dagster's
"Error occurred while executing op" wrapper taken off), which `turbomode status` shows under `errors`.
When TURBOMODE_FAILURE_WEBHOOK is set, the same record is POSTed there as JSON with a short timeout; a
webhook that cannot be reached is logged as a warning (naming its host, not the URL, which may hold a
token) and never fails the sensor, so the record in TurboMode.db is kept either way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
from dagster._core.execution.job_execution_result import JobExecutionResult
from dagster._utils.error import SerializableErrorInfo

from turbomode_dagster.config import FUNCTION_NAMES, failure_webhook_url
from turbomode_dagster.orchestration.partitions import session_label
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import TASK_TAG
from turbomode_dagster.storage.run_failures import RunFailure, RunFailureLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB

SENSOR_NAME = "record_run_failures"
WEBHOOK_TIMEOUT_SECONDS = 5
TASK_BY_FUNCTION = {name: int(task) for task, name in FUNCTION_NAMES.items()}
# A message Dagster's own error classes start with; such an error wraps the user's as its cause.
DAGSTER_ERROR_PREFIX = "dagster._core.errors."


def root_cause(error: SerializableErrorInfo) -> str:
    """The failing code's own error (`DatabaseMissing: ...`), unwrapped from Dagster's wrappers."""
    while error.cause is not None and error.message.startswith(DAGSTER_ERROR_PREFIX):
        error = error.cause
    text = error.message.strip()
    qualified, separator, message = text.partition(": ")
    if separator and error.cls_name and qualified.endswith(error.cls_name):  # the class without its module path
        return f"{error.cls_name}: {message}"
    return text


def failure_record(
    run: dg.DagsterRun, run_failure: dg.DagsterEvent, step_failures: Sequence[dg.DagsterEvent], failed_at: str
) -> RunFailure:
    """What to keep of a failed run: its task and session, the first failing step and its root cause."""
    task = TASK_BY_FUNCTION.get(run.tags.get(TASK_TAG, run.job_name))
    if step_failures:
        step = step_failures[0]
        error = root_cause(step.event_specific_data.error) if step.event_specific_data.error else step.message
        step_key = step.step_key
    else:  # the run failed outside any step (a run worker lost, a launch error)
        data = run_failure.event_specific_data
        error = root_cause(data.error) if data is not None and data.error is not None else run_failure.message
        step_key = None
    return RunFailure(
        run_id=run.run_id,
        job_name=run.job_name,
        task_id=task,
        session=session_label(run.tags),  # a range run's as A...B
        step=step_key,
        error=error or "no error message recorded",
        failed_at=failed_at,
    )


def record_failed_result(result: JobExecutionResult, home: Path) -> RunFailure:
    """Keep the failure of a run executed in this process (the sensor, when it runs, finds the same row)."""
    failed_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    failure = failure_record(
        result.dagster_run, result.get_run_failure_event(), result.get_step_failure_events(), failed_at
    )
    RunFailureLog(TurboModeDB.at_home(home)).record(failure)
    return failure


def post_webhook(url: str, failure: RunFailure, log: logging.Logger | dg.DagsterLogManager) -> bool:
    """POST the failure as JSON to `url`; True when it answered 2xx, False (and a warning) otherwise."""
    request = urllib.request.Request(
        url,
        data=json.dumps(failure.to_dict()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS):
            return True
    except (urllib.error.URLError, OSError, ValueError) as exc:
        host = urlsplit(url).netloc or "(no host)"
        log.warning(f"failure webhook at {host} not reached for run {failure.run_id}: {exc}")
        return False


def build_failure_sensor() -> dg.SensorDefinition:
    """The sensor that records failed runs of every TurboMode job."""

    @dg.run_failure_sensor(
        name=SENSOR_NAME,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Records every failed TurboMode run (task, session, step, root cause) in TurboMode.db for "
        "`turbomode status`, and POSTs it to TURBOMODE_FAILURE_WEBHOOK when that is set.",
    )
    def record_run_failures(context: dg.RunFailureSensorContext, turbomode: TurboModeHome) -> None:
        run = context.dagster_run
        failure = failure_record(run, context.failure_event, context.get_step_failure_events(), _ended(context, run))
        RunFailureLog(TurboModeDB.at_home(turbomode.path())).record(failure)
        context.log.info(f"recorded failure of {failure.job_name} ({failure.session}): {failure.error}")
        if url := failure_webhook_url():
            post_webhook(url, failure, context.log)

    return record_run_failures


def _ended(context: dg.RunFailureSensorContext, run: dg.DagsterRun) -> str:
    """When the run ended (ISO 8601, UTC), from its run record; now when the record has no end time."""
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None and record.end_time else None
    moment = dt.datetime.fromtimestamp(ended, dt.timezone.utc) if ended else dt.datetime.now(dt.timezone.utc)
    return moment.isoformat(timespec="seconds")
