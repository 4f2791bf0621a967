"""The dependency rule on hand-made facts: who starts a task for a session, when, and why not."""

from __future__ import annotations

import datetime as dt

import pytest

from turbomode_dagster.chain.rule import DEPENDENCIES, Facts, Launcher, RunState, TaskRun, decide, waiting
from turbomode_dagster.config import TaskId

UTC = dt.timezone.utc
TICK = dt.datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # 23:00 New York
GRACE = 300
SESSION = "2026-11-24"


def ok(task: TaskId, finished: dt.datetime, run_id: str = "r1") -> TaskRun:
    return TaskRun(task, RunState.SUCCEEDED, run_id, finished)


def training(*upstream: TaskRun, own: tuple[TaskRun, ...] = (), enabled: bool = True) -> Facts:
    return Facts(TaskId.ORCHESTRATOR, SESSION, upstream, own, enabled)


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def test_the_dependencies_are_the_issues() -> None:
    assert DEPENDENCIES == {
        TaskId.ORCHESTRATOR: (TaskId.INGESTION,),
        TaskId.OVERNIGHT_SCANNER: (TaskId.ORCHESTRATOR,),
        TaskId.BACKTEST_GENERATOR: (TaskId.ORCHESTRATOR, TaskId.INGESTION),
        TaskId.DRIFT_MONITOR: (TaskId.ORCHESTRATOR, TaskId.BACKTEST_GENERATOR),
    }


def test_upstream_done_by_the_tick_the_schedule_starts_it_and_the_sensor_leaves_it() -> None:
    facts = training(ok(TaskId.INGESTION, TICK - minutes(2)))
    assert decide(facts, Launcher.SCHEDULE, TICK, TICK + minutes(0.1), GRACE).launch
    sensor = decide(facts, Launcher.SENSOR, TICK, TICK + minutes(1), GRACE)
    assert not sensor.launch and "the schedule starts it" in sensor.reason


def test_upstream_done_after_the_tick_the_sensor_starts_it_and_the_schedule_leaves_it() -> None:
    facts = training(ok(TaskId.INGESTION, TICK + minutes(60)))
    schedule = decide(facts, Launcher.SCHEDULE, TICK, TICK + minutes(61), GRACE)
    assert not schedule.launch and "run_orchestrator_after_upstream starts it" in schedule.reason
    assert decide(facts, Launcher.SENSOR, TICK, TICK + minutes(61), GRACE).launch


@pytest.mark.parametrize("launcher", list(Launcher))
def test_a_failed_upstream_stops_it_naming_the_run(launcher: Launcher) -> None:
    facts = training(TaskRun(TaskId.INGESTION, RunState.FAILED, "bad-run", TICK - minutes(5)))
    decision = decide(facts, launcher, TICK, TICK + minutes(1), GRACE)
    assert not decision.launch
    assert "upstream failed: run_ingestion (run bad-run)" in decision.reason
    assert waiting(facts) == decision.reason


def test_a_task_with_two_upstreams_waits_for_the_later_one() -> None:
    tick = TICK + minutes(90)  # 00:30
    facts = Facts(
        TaskId.DRIFT_MONITOR,
        SESSION,
        [ok(TaskId.ORCHESTRATOR, TICK), TaskRun(TaskId.BACKTEST_GENERATOR, RunState.RUNNING, "r4")],
        [],
    )
    assert waiting(facts) == f"run_drift_monitor for {SESSION} waits on run_backtest_generator (running, run r4)"
    done = Facts(
        TaskId.DRIFT_MONITOR,
        SESSION,
        [ok(TaskId.ORCHESTRATOR, TICK), ok(TaskId.BACKTEST_GENERATOR, tick + minutes(3))],
        [],
    )
    assert not decide(done, Launcher.SCHEDULE, tick, tick + minutes(4), GRACE).launch
    assert decide(done, Launcher.SENSOR, tick, tick + minutes(4), GRACE).launch


@pytest.mark.parametrize(("late", "launch"), [(GRACE, True), (GRACE + 1, False)])
def test_the_grace_time_counts_from_the_tick(late: int, launch: bool) -> None:
    facts = training(ok(TaskId.INGESTION, TICK - minutes(2)))
    decision = decide(facts, Launcher.SCHEDULE, TICK, TICK + dt.timedelta(seconds=late), GRACE)
    assert decision.launch is launch
    if not launch:
        assert "was due at its tick, 2026-11-25T04:00:00+00:00; evaluated 301 s late" in decision.reason


@pytest.mark.parametrize(("late", "launch"), [(GRACE, True), (GRACE + 1, False)])
def test_after_a_late_upstream_the_grace_time_counts_from_its_end(late: int, launch: bool) -> None:
    finished = TICK + minutes(60)
    facts = training(ok(TaskId.INGESTION, finished))
    assert decide(facts, Launcher.SENSOR, TICK, finished + dt.timedelta(seconds=late), GRACE).launch is launch


def test_never_twice_by_automation_but_a_failed_run_by_hand_does_not_count() -> None:
    upstream = ok(TaskId.INGESTION, TICK - minutes(2))
    automated = TaskRun(TaskId.ORCHESTRATOR, RunState.SUCCEEDED, "auto", TICK + minutes(30), by_automation=True)
    assert waiting(training(upstream, own=(automated,))) == (
        f"run_orchestrator for {SESSION} was already started by automation (run auto, succeeded)"
    )
    by_hand = TaskRun(TaskId.ORCHESTRATOR, RunState.RUNNING, "hand")
    assert "already run by hand (run hand, running)" in waiting(training(upstream, own=(by_hand,)))
    failed_by_hand = TaskRun(TaskId.ORCHESTRATOR, RunState.FAILED, "hand", TICK - minutes(1))
    assert decide(training(upstream, own=(failed_by_hand,)), Launcher.SCHEDULE, TICK, TICK, GRACE).launch


def test_a_disabled_task_is_never_started() -> None:
    facts = training(ok(TaskId.INGESTION, TICK - minutes(2)), enabled=False)
    decision = decide(facts, Launcher.SCHEDULE, TICK, TICK, GRACE)
    assert (decision.launch, decision.reason) == (False, "task 2 (run_orchestrator) is disabled in the config")


def test_no_upstream_run_yet_is_waited_on() -> None:
    assert waiting(training(TaskRun(TaskId.INGESTION, RunState.NONE))) == (
        f"run_orchestrator for {SESSION} waits on run_ingestion (no run)"
    )
