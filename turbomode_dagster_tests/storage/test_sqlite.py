"""sqlite3 read-only handles (TurboMode.db's readers): a `mode=ro` URI plus an authorizer that allows reads only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from turbomode_dagster.storage.market_db import MarketDBWriter
from turbomode_dagster.storage.sqlite import connect_read_only
from turbomode_dagster_tests.conftest import dump_tables
from turbomode_dagster_tests.storage.test_market_db import BARS, write_bars


@pytest.fixture
def seeded(db_path: Path) -> None:
    """A database holding three bars, its writer closed."""
    writer = MarketDBWriter(db_path)
    write_bars(writer, BARS, "t0")
    writer.close()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO daily_bars VALUES ('X', '2026-11-25', 1, 1, 1, 1, 1, 's', 't')",
        "DELETE FROM daily_bars",
        "UPDATE daily_bars SET close = 0",
        "CREATE TABLE sneaky (x INTEGER)",
        "DROP TABLE daily_bars",
    ],
)
def test_a_read_only_handle_cannot_write(seeded: None, db_path: Path, statement: str) -> None:
    before = dump_tables(db_path)
    con = connect_read_only(db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match=r"not authorized|readonly|read-only|query_only"):
            con.execute(statement)
            con.commit()
    finally:
        con.close()
    assert dump_tables(db_path) == before


def test_a_read_only_handle_is_read_only_by_how_it_is_opened(seeded: None, db_path: Path) -> None:
    """Without its authorizer and with query_only off, the mode=ro URI alone still refuses writes."""
    con = connect_read_only(db_path)
    try:
        con.set_authorizer(None)
        con.execute("PRAGMA query_only = OFF")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            con.execute("DELETE FROM daily_bars")
    finally:
        con.close()
    assert len(dump_tables(db_path)["daily_bars"]) == 3


@pytest.mark.parametrize(
    "statements",
    [
        # The drill that wrote through the Master DB reader before it had an authorizer.
        ["PRAGMA query_only = OFF", "ATTACH '{uri}?mode=rw' AS rw", "INSERT INTO rw.daily_bars {row}"],
        ["ATTACH '{uri}?mode=rw' AS rw"],
        ["ATTACH ':memory:' AS scratch"],
        ["PRAGMA query_only = OFF"],
        ["PRAGMA journal_mode = DELETE"],
        ["PRAGMA writable_schema = ON"],
        ["INSERT INTO daily_bars {row}"],
        ["CREATE TEMP TABLE sneaky (x INTEGER)"],
    ],
)
def test_a_read_only_handle_denies_attach_pragma_changes_and_writes(
    seeded: None, db_path: Path, statements: list[str]
) -> None:
    before = dump_tables(db_path)
    uri = db_path.resolve().as_uri()
    row = "VALUES ('X', '2026-11-25', 1, 1, 1, 1, 1, 's', 't')"
    con = connect_read_only(db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            for statement in statements:
                con.execute(statement.format(uri=uri, row=row))
            con.commit()
    finally:
        con.close()
    assert dump_tables(db_path) == before


def test_a_read_only_handle_still_reads_and_reports(seeded: None, db_path: Path) -> None:
    con = connect_read_only(db_path)
    try:
        assert con.execute("SELECT COUNT(*) FROM daily_bars").fetchone() == (3,)
        columns = [r[1] for r in con.execute("PRAGMA table_info(daily_bars)")]
        assert columns[:2] == ["symbol", "date"]
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA query_only").fetchone() == (1,)
        with_cte = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT SUM(i) FROM n"
        assert con.execute(with_cte).fetchone() == (6,)
    finally:
        con.close()
