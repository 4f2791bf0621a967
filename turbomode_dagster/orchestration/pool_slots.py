"""Give back pool slots held by runs that are no longer alive, so one killed run cannot block a pool forever.

Dagster frees a step's pool slot when the step ends, and the daemon (run monitoring's
`free_slots_after_run_end_seconds`) frees those of runs that ended without doing so. Neither helps
when a process is killed (SIGKILL, OOM, machine loss) while no daemon runs, as with `turbomode nightly`:
the dead run stays STARTED and keeps `database_write` for good. So every TurboMode run starts by
checking who holds slots: a run that has finished, or whose orchestrating process (the one that
logged its RUN_START) is gone, is marked failed if need be and its slots are freed, with a log line
naming it. Process liveness is only judged on a local SQLite instance, where runs and the instance
share a machine; elsewhere only finished runs are freed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import psutil
from dagster._core.storage.event_log.sqlite import ConsolidatedSqliteEventLogStorage, SqliteEventLogStorage

LOCAL_STORAGES = (SqliteEventLogStorage, ConsolidatedSqliteEventLogStorage)
# A process created this long after its run started cannot be the run's (the pid was reused).
PID_REUSE_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class FreedRun:
    """A run whose slots were given back, and why it counted as dead."""

    run_id: str
    reason: str


def free_slots_of_dead_runs(
    instance: dg.DagsterInstance, current_run_id: str | None = None, log: Callable[[str], None] = print
) -> list[FreedRun]:
    """Free every pool slot (claimed or pending) held by a run that is not alive; return those runs."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    freed = []
    for run_id in sorted(storage.get_concurrency_run_ids() - {current_run_id}):
        run = instance.get_run_by_id(run_id)
        reason = _why_dead(instance, run_id, run)
        if reason is None:
            continue
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"TurboMode: {reason}; its pool slots were freed")
        storage.free_concurrency_slots_for_run(run_id)
        log(f"freed the pool slots held by run {run_id} ({run.job_name if run else 'deleted run'}): {reason}")
        freed.append(FreedRun(run_id, reason))
    return freed


def _why_dead(instance: dg.DagsterInstance, run_id: str, run: dg.DagsterRun | None) -> str | None:
    """Why `run_id` (stored as `run`, None when deleted) can no longer use its slots, or None when it may still run."""
    if run is None:
        return "the run no longer exists"
    if run.is_finished:
        return f"the run ended {run.status.value} without giving its slots back"
    if not isinstance(instance.event_log_storage, LOCAL_STORAGES):
        return None
    started = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    if not started or started[0].dagster_event is None or started[0].dagster_event.pid is None:
        return None
    pid, since = started[0].dagster_event.pid, started[0].timestamp
    if not _alive(pid, since):
        return f"its process {pid} is gone (killed, out of memory, or the machine restarted)"
    return None


def _alive(pid: int, since: float) -> bool:
    """True when process `pid` exists, is not a zombie, and is old enough to be the one that started at `since`."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= since + PID_REUSE_SLACK_SECONDS
    except psutil.Error:
        return False
