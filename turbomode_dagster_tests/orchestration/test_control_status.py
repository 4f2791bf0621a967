"""`turbomode status`: the seed's /scheduler/status document from a real instance and TurboMode.db."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest
from dagster._daemon.types import DaemonHeartbeat

from turbomode_dagster.config import load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.control import switch_all, turbomode_repository
from turbomode_dagster.orchestration.launch import execute_attached
from turbomode_dagster.orchestration.status import DAEMONS, scheduler_status
from turbomode_dagster.storage.run_failures import RunFailure, RunFailureLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB
from turbomode_dagster_tests.conftest import DAY, SMALL_PATCHES
from turbomode_dagster_tests.orchestration.nightwalk import plant_run

# The example response of GET /scheduler/status in the seed's README_SCHEDULE.md ("..." entries dropped).
SEED_EXAMPLE = json.loads("""{
  "running": true,
  "version": "1.0",
  "jobs": [{"id": "task_1", "name": "Master Market Data Ingestion", "next_run": "2026-01-06T22:45:00-05:00"}],
  "last_runs": {"1": "2026-01-05T22:45:23", "2": "2026-01-05T23:00:45"},
  "last_results": {"1": {"status": "success", "symbols_processed": 83, "candles_ingested": 41500}},
  "errors": {}
}""")
SEED_ERROR = {"timestamp": "2026-01-06T22:45:00", "error": "IBKR Gateway not available"}  # "Task Failed"
# Wednesday 2026-11-25, 15:00 in New York: before the close, so tonight's tasks work on 2026-11-24.
NOW = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def sample_config(make_config, monkeypatch):
    path = make_config({**SMALL_PATCHES, "sources.order": ["sample"]})
    monkeypatch.setenv("TURBOMODE_CONFIG", str(path))
    return path


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def status(instance, settings, home: Path, now: dt.datetime = NOW, **kwargs) -> dict:
    with turbomode_repository(instance) as repository:
        return scheduler_status(instance, settings, repository, home, now, **kwargs)


def heartbeat(instance, at: dt.datetime) -> None:
    for daemon in DAEMONS:
        instance.add_daemon_heartbeat(DaemonHeartbeat(at.timestamp(), daemon, "test-daemon", None))


def test_the_document_has_the_seeds_keys(instance, home: Path, sample_config) -> None:
    settings = load_settings(sample_config)
    job = build_definitions(settings).resolve_job_def("run_ingestion")
    assert execute_attached(instance, job, DAY).success
    RunFailureLog(TurboModeDB.at_home(home)).record(
        RunFailure("r9", "run_orchestrator", 2, DAY, "feature_panel", "ValueError: boom", "2026-11-25T04:05:00+00:00")
    )
    document = status(instance, settings, home)
    assert set(document) == set(SEED_EXAMPLE)
    assert [j["id"] for j in document["jobs"]] == [f"task_{i}" for i in range(1, 7)]
    for job_entry in document["jobs"]:
        assert set(SEED_EXAMPLE["jobs"][0]) <= set(job_entry)
    assert set(SEED_EXAMPLE["last_results"]["1"]) <= set(document["last_results"]["1"])
    assert set(SEED_ERROR) <= set(document["errors"]["2"])
    assert json.loads(json.dumps(document, allow_nan=False)) == document  # strict JSON


def test_last_runs_and_results_come_from_the_latest_run(instance, home: Path, sample_config) -> None:
    settings = load_settings(sample_config)
    job = build_definitions(settings).resolve_job_def("run_ingestion")
    result = execute_attached(instance, job, DAY)
    document = status(instance, settings, home)
    assert document["last_results"] == {
        "1": {
            "status": "success",
            "run_id": result.run_id,
            "session": DAY,
            "symbols_processed": 3,
            "candles_ingested": 3,  # partition DAY is DAY's rows: one bar for each of 3 symbols
            "quarantined_rows": 0,
            "symbols_failed": 0,
        }
    }
    started = instance.get_run_record_by_id(result.run_id).start_time
    assert document["last_runs"] == {
        "1": dt.datetime.fromtimestamp(started, dt.timezone(dt.timedelta(hours=-5))).isoformat(timespec="seconds")
    }


def test_errors_show_the_latest_failure_of_each_task(instance, home: Path, small_settings) -> None:
    log = RunFailureLog(TurboModeDB.at_home(home))
    job = "run_orchestrator"
    log.record(RunFailure("r1", job, 2, "2026-11-23", "feature_panel", "old", "2026-11-24T04:05:00+00:00"))
    log.record(RunFailure("r2", job, 2, DAY, "trained_ensemble", "MemoryError", "2026-11-25T04:05:00+00:00"))
    assert status(instance, small_settings, home)["errors"] == {
        "2": {
            "timestamp": "2026-11-24T23:05:00-05:00",
            "error": "MemoryError",
            "run_id": "r2",
            "job": "run_orchestrator",
            "session": DAY,
            "step": "trained_ensemble",
        }
    }


def test_next_run_is_the_next_tick_in_the_configs_timezone(instance, home: Path, make_config) -> None:
    settings = load_settings(make_config({**SMALL_PATCHES, "scheduled_tasks.2.enabled": False}))
    jobs = {j["id"]: j for j in status(instance, settings, home)["jobs"]}
    assert jobs["task_1"]["next_run"] == "2026-11-25T22:45:00-05:00"
    assert jobs["task_2"]["next_run"] == "2026-11-25T23:00:00-05:00"
    assert (jobs["task_3"]["enabled"], jobs["task_3"]["next_run"]) == (False, None)
    assert jobs["task_4"]["next_run"] == "2026-11-26T00:00:00-05:00"  # midnight: the next calendar day
    assert jobs["task_1"]["schedule"] == "running"
    assert jobs["task_1"]["name"] == "Master Market Data Ingestion"


def test_a_stopped_schedule_has_no_next_run(instance, home: Path, small_settings) -> None:
    with turbomode_repository(instance) as repository:
        switch_all(instance, repository, on=False)
    jobs = status(instance, small_settings, home)["jobs"]
    assert {(j["schedule"], j["next_run"]) for j in jobs if j["id"] != "task_6"} == {("stopped", None)}


def test_running_means_fresh_daemon_heartbeats(instance, home: Path, small_settings) -> None:
    assert status(instance, small_settings, home)["running"] is False  # no daemon ever
    heartbeat(instance, NOW - dt.timedelta(seconds=20))
    assert status(instance, small_settings, home)["running"] is True
    # Dagster's own rule, the one the UI's daemon page applies: 30 s interval plus 30 min tolerance.
    assert status(instance, small_settings, home, now=NOW + dt.timedelta(minutes=29))["running"] is True
    assert status(instance, small_settings, home, now=NOW + dt.timedelta(minutes=31))["running"] is False


def test_waiting_names_the_failed_upstream_run(instance, home: Path, small_settings) -> None:
    """Tonight's session (2026-11-24 at NOW): nothing ran, then ingestion failed."""
    jobs = {j["id"]: j["waiting"] for j in status(instance, small_settings, home)["jobs"]}
    assert jobs["task_1"] is None and jobs["task_6"] is None
    assert jobs["task_2"] == "run_orchestrator for 2026-11-24 waits on run_ingestion (no run)"
    defs = build_definitions(small_settings)
    start = NOW - dt.timedelta(hours=2)
    failed = plant_run(instance, defs, "run_ingestion", "2026-11-24", start, NOW, succeeded=False)
    jobs = {j["id"]: j["waiting"] for j in status(instance, small_settings, home)["jobs"]}
    assert "upstream failed: run_ingestion" in jobs["task_2"] and failed.run_id in jobs["task_2"]
    assert "run_ingestion" in jobs["task_4"]  # Task 4 needs Tasks 2 and 1
