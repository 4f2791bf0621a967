"""Pool slots held by dead runs are given back; those of live runs are not."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType

from turbomode_dagster.orchestration.pool_slots import free_slots_of_dead_runs
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL

POOL = DATABASE_WRITE_POOL


@dg.op
def write_step() -> None:
    """A placeholder step for the runs these tests create by hand."""


@dg.job
def ingestion_like() -> None:
    write_step()


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        yield instance


def _run_holding_the_slot(instance: dg.DagsterInstance, pid: int | None, status: str = "started") -> str:
    """A run that logged RUN_START from `pid` (None: never started) and claimed the pool's slot."""
    run = instance.create_run_for_job(ingestion_like)
    if pid is not None:
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid), run_id=run.run_id
        )
    if status == "success":
        instance.report_dagster_event(
            DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name), run_id=run.run_id
        )
    claim = instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, "write_step")
    assert claim.is_claimed
    return run.run_id


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _holders(instance: dg.DagsterInstance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def test_a_killed_run_is_marked_failed_and_its_slot_freed(instance) -> None:
    run_id = _run_holding_the_slot(instance, _dead_pid())
    lines: list[str] = []
    (freed,) = free_slots_of_dead_runs(instance, log=lines.append)
    assert freed.run_id == run_id and "is gone" in freed.reason
    assert _holders(instance) == set()
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert lines == [f"freed the pool slots held by run {run_id} (ingestion_like): {freed.reason}"]


def test_a_finished_run_that_kept_its_slot_is_freed(instance) -> None:
    run_id = _run_holding_the_slot(instance, os.getpid(), status="success")
    (freed,) = free_slots_of_dead_runs(instance, log=lambda _: None)
    assert freed.run_id == run_id and "ended SUCCESS" in freed.reason
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS, "a finished run keeps its status"


def test_a_live_run_keeps_its_slot(instance) -> None:
    run_id = _run_holding_the_slot(instance, os.getpid())
    assert free_slots_of_dead_runs(instance, log=lambda _: None) == []
    assert _holders(instance) == {run_id}


def test_a_run_not_yet_started_is_left_alone(instance) -> None:
    run_id = _run_holding_the_slot(instance, pid=None)
    assert free_slots_of_dead_runs(instance, log=lambda _: None) == []
    assert _holders(instance) == {run_id}


def test_the_current_run_is_never_judged(instance) -> None:
    run_id = _run_holding_the_slot(instance, _dead_pid())
    assert free_slots_of_dead_runs(instance, current_run_id=run_id, log=lambda _: None) == []


def test_a_reused_pid_does_not_keep_a_dead_run_alive(instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pid is alive, but the process was created after the run started: it is another process."""
    run_id = _run_holding_the_slot(instance, os.getpid())
    import psutil

    monkeypatch.setattr(psutil.Process, "create_time", lambda self: 4.0e9)  # the year 2096
    (freed,) = free_slots_of_dead_runs(instance, log=lambda _: None)
    assert freed.run_id == run_id
