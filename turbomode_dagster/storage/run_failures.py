"""Failed TurboMode runs in TurboMode.db (table run_failures): task, session, step and root cause.

Written by the run-failure sensor, read by `turbomode status` for its `errors`. One row per run id, so a
sensor that sees the same failure twice leaves one row.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import asdict, dataclass

from turbomode_dagster.storage.turbomode_db import TurboModeDB

COLUMNS = ("run_id", "job_name", "task_id", "session", "step", "error", "failed_at")


@dataclass(frozen=True)
class RunFailure:
    """One failed run: which task and session, the failing step and its root-cause message."""

    run_id: str
    job_name: str
    task_id: int | None
    session: str | None
    step: str | None
    error: str
    failed_at: str  # ISO 8601, UTC

    def to_dict(self) -> dict[str, object]:
        """The failure as JSON-ready data (the webhook's body)."""
        return asdict(self)


class RunFailureLog:
    """The run_failures table of one TurboMode DB."""

    def __init__(self, db: TurboModeDB):
        self.db = db

    def record(self, failure: RunFailure) -> None:
        """Store a failure (again: the row of its run id is replaced)."""
        with self.db.writing() as con:
            con.execute(
                f"INSERT OR REPLACE INTO run_failures ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                tuple(getattr(failure, c) for c in COLUMNS),
            )

    def latest_by_task(self) -> dict[int, RunFailure]:
        """The most recent failure of each task that has one; nothing when TurboMode.db does not exist."""
        if not self.db.path.exists():
            return {}
        with closing(self.db.connect_read_write()) as con:  # migrates a file older than this table
            rows = con.execute(
                f"SELECT {', '.join(COLUMNS)} FROM run_failures f WHERE task_id IS NOT NULL AND failed_at = "
                "(SELECT MAX(failed_at) FROM run_failures g WHERE g.task_id = f.task_id) ORDER BY task_id, run_id"
            ).fetchall()
        latest: dict[int, RunFailure] = {}
        for row in rows:
            failure = RunFailure(*row)
            latest.setdefault(failure.task_id, failure)
        return latest
