"""The run_failures table: one row per failed run, the latest per task for `turbomode status`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from turbomode_dagster.storage.run_failures import RunFailure, RunFailureLog
from turbomode_dagster.storage.sqlite import migrate, schema_version
from turbomode_dagster.storage.turbomode_db import MIGRATIONS, TurboModeDB


def failure(run_id: str, task_id: int | None, failed_at: str, error: str = "ValueError: boom") -> RunFailure:
    return RunFailure(run_id, "run_orchestrator", task_id, "2026-11-25", "feature_panel", error, failed_at)


def test_latest_failure_per_task(tmp_path: Path) -> None:
    log = RunFailureLog(TurboModeDB.at_home(tmp_path))
    log.record(failure("r1", 2, "2026-11-24T04:00:00+00:00", "old"))
    log.record(failure("r2", 2, "2026-11-25T04:00:00+00:00", "new"))
    log.record(failure("r3", 1, "2026-11-20T03:00:00+00:00"))
    log.record(failure("r4", None, "2026-11-26T03:00:00+00:00"))  # a run of no task (an ad hoc asset job)
    latest = log.latest_by_task()
    assert sorted(latest) == [1, 2]
    assert latest[2] == failure("r2", 2, "2026-11-25T04:00:00+00:00", "new")
    assert latest[1].run_id == "r3"


def test_recording_a_run_twice_keeps_one_row(tmp_path: Path) -> None:
    db = TurboModeDB.at_home(tmp_path)
    log = RunFailureLog(db)
    log.record(failure("r1", 2, "2026-11-25T04:00:00+00:00"))
    log.record(failure("r1", 2, "2026-11-25T04:00:05+00:00"))
    with sqlite3.connect(db.path) as con:
        assert con.execute("SELECT run_id, failed_at FROM run_failures").fetchall() == [
            ("r1", "2026-11-25T04:00:05+00:00")
        ]


def test_no_database_means_no_failures_and_creates_nothing(tmp_path: Path) -> None:
    assert RunFailureLog(TurboModeDB.at_home(tmp_path)).latest_by_task() == {}
    assert not (tmp_path / "turbomode.db").exists()


def test_a_file_from_before_the_table_is_migrated_when_read(tmp_path: Path) -> None:
    db = TurboModeDB.at_home(tmp_path)
    con = sqlite3.connect(db.path, isolation_level=None)
    migrate(con, MIGRATIONS[:3])
    con.close()
    assert RunFailureLog(db).latest_by_task() == {}
    with sqlite3.connect(db.path) as con:
        assert schema_version(con) == len(MIGRATIONS)
