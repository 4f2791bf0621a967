"""The run-failure sensor: a real failed TurboMode run recorded with its root cause, and the webhook."""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.failures import (
    SENSOR_NAME,
    build_failure_sensor,
    post_webhook,
    record_failed_result,
    root_cause,
)
from turbomode_dagster.orchestration.launch import execute_attached
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.storage.run_failures import RunFailure, RunFailureLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB
from turbomode_dagster_tests.conftest import DAY

MISSING_SAMPLES = "LookupError: "


@pytest.fixture
def failed_training(home: Path, small_settings):
    """Task 2 run for a session before any Task 1 run: its first step fails loading the missing training samples."""
    with dg.instance_for_test() as instance:
        job = build_definitions(small_settings).resolve_job_def("run_orchestrator")
        result = execute_attached(instance, job, DAY)
        assert not result.success
        yield instance, result


class Listener:
    """An HTTP server on 127.0.0.1 that keeps every POSTed JSON body."""

    def __init__(self):
        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/secret-token"


def evaluate_sensor(instance: dg.DagsterInstance, result) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=SENSOR_NAME,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"turbomode": TurboModeHome()},
    )
    build_failure_sensor()(context)


def test_root_cause_is_the_steps_own_error_not_dagsters_wrapper(failed_training) -> None:
    _, result = failed_training
    (failure,) = result.get_step_failure_events()
    error = failure.event_specific_data.error
    assert error.cls_name == "DagsterExecutionStepExecutionError"  # what Dagster reports at the top
    cause = root_cause(error)
    assert cause.startswith(MISSING_SAMPLES), cause
    assert f"training_samples has no file from the start to {DAY}: materialise training_samples" in cause


def test_the_sensor_records_a_real_failed_run(failed_training, home: Path, monkeypatch) -> None:
    monkeypatch.delenv("TURBOMODE_FAILURE_WEBHOOK", raising=False)
    instance, result = failed_training
    evaluate_sensor(instance, result)
    (recorded,) = RunFailureLog(TurboModeDB.at_home(home)).latest_by_task().values()
    assert recorded.run_id == result.run_id
    assert (recorded.task_id, recorded.job_name, recorded.session) == (2, "run_orchestrator", DAY)
    assert recorded.step == result.get_step_failure_events()[0].step_key
    assert recorded.error.startswith(MISSING_SAMPLES)
    evaluate_sensor(instance, result)  # a second evaluation of the same failure leaves one row
    assert len(RunFailureLog(TurboModeDB.at_home(home)).latest_by_task()) == 1


def test_the_webhook_receives_the_same_record_as_json(failed_training, home: Path, listener, monkeypatch) -> None:
    monkeypatch.setenv("TURBOMODE_FAILURE_WEBHOOK", listener.url)
    instance, result = failed_training
    evaluate_sensor(instance, result)
    (recorded,) = RunFailureLog(TurboModeDB.at_home(home)).latest_by_task().values()
    assert listener.bodies == [recorded.to_dict()]
    assert listener.bodies[0]["error"].startswith(MISSING_SAMPLES)


def test_an_unreachable_webhook_is_logged_and_the_failure_still_recorded(
    failed_training, home: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TURBOMODE_FAILURE_WEBHOOK", closed_port_url())
    instance, result = failed_training
    evaluate_sensor(instance, result)  # does not raise
    assert [f.run_id for f in RunFailureLog(TurboModeDB.at_home(home)).latest_by_task().values()] == [result.run_id]


def test_post_webhook_warns_with_the_host_only(caplog) -> None:
    url = closed_port_url()
    failure = RunFailure("r1", "run_ingestion", 1, DAY, "market_data", "ValueError: boom", "2026-11-26T03:50:00+00:00")
    logger = logging.getLogger("turbomode-test")
    with caplog.at_level(logging.WARNING, logger="turbomode-test"):
        assert post_webhook(url, failure, logger) is False
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"failure webhook at 127.0.0.1:{url.split(':')[2].split('/')[0]} not reached for run r1")
    assert "secret-token" not in message


def test_post_webhook_answers_true_when_delivered(listener) -> None:
    failure = RunFailure("r1", "run_ingestion", 1, DAY, "market_data", "ValueError: boom", "2026-11-26T03:50:00+00:00")
    assert post_webhook(listener.url, failure, logging.getLogger("turbomode-test")) is True
    assert listener.bodies == [failure.to_dict()]


def test_a_failure_in_process_is_recorded_by_the_command_too(failed_training, home: Path) -> None:
    _, result = failed_training
    recorded = record_failed_result(result, home)
    assert RunFailureLog(TurboModeDB.at_home(home)).latest_by_task() == {2: recorded}


def test_the_sensor_is_in_the_code_location_and_on_by_default(small_settings) -> None:
    sensor = build_definitions(small_settings).get_sensor_def(SENSOR_NAME)
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
