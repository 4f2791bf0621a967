"""integrity_check, checkpoint and VACUUM: space comes back once, and a damaged file is reported and left alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from turbomode_dagster.maintenance.databases import MAX_MESSAGES, database_bytes, maintain_database
from turbomode_dagster_tests.maintenance.helpers import damaged_copy, database_with_dead_rows, sha256


def _rows(path: Path) -> list[tuple]:
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("SELECT * FROM bars ORDER BY symbol, date").fetchall()
    finally:
        con.close()


def test_deleted_rows_are_given_back_by_vacuum_and_the_rows_kept(tmp_path: Path) -> None:
    db = database_with_dead_rows(tmp_path / "market_data.db")
    before, rows = db.stat().st_size, _rows(db)
    result = maintain_database("market_data", db)
    assert result.intact and result.vacuumed and result.integrity == ("ok",)
    assert result.bytes_before == before
    assert result.bytes_after == database_bytes(db) < before / 5, "20,000 rows deleted down to 100"
    assert result.bytes_reclaimed == before - result.bytes_after
    assert not db.with_name("market_data.db-wal").exists() or db.with_name("market_data.db-wal").stat().st_size == 0
    assert _rows(db) == rows


def test_a_second_run_in_a_row_reclaims_nothing(tmp_path: Path) -> None:
    db = database_with_dead_rows(tmp_path / "turbomode.db")
    maintain_database("turbomode", db)
    size = db.stat().st_size
    again = maintain_database("turbomode", db)
    assert again.vacuumed and again.bytes_reclaimed == 0 and db.stat().st_size == size


@pytest.mark.parametrize("whole_page", [False, True], ids=["cells zeroed", "page overwritten"])
def test_a_damaged_database_is_reported_with_sqlites_messages_and_not_vacuumed(
    tmp_path: Path, whole_page: bool
) -> None:
    healthy = database_with_dead_rows(tmp_path / "healthy.db", rows=40_000, keep=30_000)
    damaged = damaged_copy(healthy, tmp_path / "turbomode.db", whole_page=whole_page)
    fingerprint, size = sha256(damaged), damaged.stat().st_size
    result = maintain_database("turbomode", damaged)
    assert result.present and not result.intact and not result.vacuumed
    report = " ".join(result.integrity)
    if whole_page:  # SQLite cannot even walk the tree: the error itself is the report
        assert result.integrity == ("database disk image is malformed (SQLITE_CORRUPT)",)
    else:
        assert result.integrity[0] == "*** in database main ***" and "On tree page" in report, result.integrity
        assert 1 < len(result.integrity) <= MAX_MESSAGES
    assert sha256(damaged) == fingerprint, "a damaged file must be left byte for byte as it was"
    assert result.bytes_reclaimed == 0 and result.bytes_after == size


def test_a_file_that_is_not_a_database_is_reported_not_raised(tmp_path: Path) -> None:
    garbage = tmp_path / "market_data.db"
    garbage.write_bytes(b"not sqlite at all" * 1000)
    result = maintain_database("market_data", garbage)
    assert not result.intact and not result.vacuumed
    assert "SQLITE_NOTADB" in result.integrity[0] or "not a database" in result.integrity[0]


def test_a_missing_database_stays_missing(tmp_path: Path) -> None:
    result = maintain_database("turbomode", tmp_path / "turbomode.db")
    assert not result.present and result.intact and not result.vacuumed
    assert not (tmp_path / "turbomode.db").exists(), "maintenance must not create a database"
