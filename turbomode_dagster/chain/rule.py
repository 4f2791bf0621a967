"""When a dependent task starts for a session: at its configured time if its upstream has succeeded by then,
right after the upstream if that finishes later, never if it failed or never ran, and never twice by automation.

Pure: the facts (upstream runs, the task's own runs, the clock) are read from the Dagster instance by
`turbomode_dagster.orchestration.chaining`; this module only decides, so the rule is testable by hand.
Two launchers share the rule: the task's schedule (its tick at the configured time) and its
`<function_name>_after_upstream` sensor. Which one owns a session is decided by when the upstream
finished (by the tick: the schedule; after it: the sensor), so the two never both launch a session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from turbomode_dagster.config import TaskId

# Task -> the tasks whose run for the same session must have succeeded first (issue 10; the seed's list,
# plus Task 4 after Task 2, whose out-of-fold predictions it trades).
DEPENDENCIES: dict[TaskId, tuple[TaskId, ...]] = {
    TaskId.ORCHESTRATOR: (TaskId.INGESTION,),
    TaskId.OVERNIGHT_SCANNER: (TaskId.ORCHESTRATOR,),
    TaskId.BACKTEST_GENERATOR: (TaskId.ORCHESTRATOR, TaskId.INGESTION),
    TaskId.DRIFT_MONITOR: (TaskId.ORCHESTRATOR, TaskId.BACKTEST_GENERATOR),
}


class RunState(Enum):
    """Where a task's latest run for a session stands."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RUNNING = "running"
    NONE = "no run"


class Launcher(Enum):
    """Who evaluates the rule: the schedule's tick at the configured time, or the sensor after it."""

    SCHEDULE = "schedule"
    SENSOR = "sensor"


@dataclass(frozen=True)
class TaskRun:
    """The latest run of one task for the session (state NONE and no run id when there is none)."""

    task: TaskId
    state: RunState
    run_id: str | None = None
    finished_at: dt.datetime | None = None
    by_automation: bool = False


@dataclass(frozen=True)
class Facts:
    """What the instance knows about one task and one session: the config's switch, upstream and own runs."""

    task: TaskId
    session: str
    upstream: Sequence[TaskRun]  # the latest run of each upstream task for the session
    own_runs: Sequence[TaskRun]  # every run of the task itself for the session
    enabled: bool = True


@dataclass(frozen=True)
class Decision:
    """Launch or not, and the one line saying why."""

    launch: bool
    reason: str


def decide(facts: Facts, launcher: Launcher, tick: dt.datetime, now: dt.datetime, grace_seconds: float) -> Decision:
    """Whether `launcher`, evaluated at `now`, starts the task for the session its configured `tick` targets.

    A task becomes due at its tick, or when its last upstream finished if that was after the tick; it
    is not started later than `grace_seconds` after it became due (the seed's misfire_grace_time).
    """
    name = facts.task.function_name
    blocked = waiting(facts)
    if blocked:
        return Decision(False, blocked)
    ready_at = max((run.finished_at for run in facts.upstream if run.finished_at), default=None)
    after_tick = ready_at is not None and ready_at > tick
    if launcher is Launcher.SCHEDULE and after_tick:
        return Decision(
            False, f"upstream succeeded at {ready_at.isoformat()}, after the tick: {name}_after_upstream starts it"
        )
    if launcher is Launcher.SENSOR and not after_tick:
        return Decision(False, f"upstream had succeeded by the tick of {tick.isoformat()}: the schedule starts it")
    due = ready_at if after_tick else tick
    late = (now - due).total_seconds()
    if late > grace_seconds:
        what = "when its upstream finished" if after_tick else "at its tick"
        return Decision(
            False,
            f"{name} for {facts.session} was due {what}, {due.isoformat()}; evaluated {late:.0f} s late, "
            f"beyond misfire_grace_time {grace_seconds:.0f} s: not started",
        )
    upstream = ", ".join(f"{run.task.function_name} {run.run_id}" for run in facts.upstream) or "none"
    return Decision(True, f"{name} for {facts.session}; upstream succeeded: {upstream}")


def waiting(facts: Facts) -> str | None:
    """Why the task cannot start for the session whoever launches it (disabled, already run, its upstream), or None."""
    name, session = facts.task.function_name, facts.session
    if not facts.enabled:
        return f"task {facts.task.value} ({name}) is disabled in the config"
    for run in facts.own_runs:
        if run.by_automation:
            return f"{name} for {session} was already started by automation (run {run.run_id}, {run.state.value})"
        if run.state in (RunState.RUNNING, RunState.SUCCEEDED):
            return f"{name} for {session} was already run by hand (run {run.run_id}, {run.state.value})"
    failed = [run for run in facts.upstream if run.state is RunState.FAILED]
    if failed:
        runs = ", ".join(f"{run.task.function_name} (run {run.run_id})" for run in failed)
        return f"{name} for {session} will not start: upstream failed: {runs}; rerun it by hand, then {name} follows"
    pending = [run for run in facts.upstream if run.state is not RunState.SUCCEEDED]
    if pending:
        runs = ", ".join(
            f"{run.task.function_name} ({run.state.value}{f', run {run.run_id}' if run.run_id else ''})"
            for run in pending
        )
        return f"{name} for {session} waits on {runs}"
    return None
