"""The Master Market Data DB: WAL and versioned schema, migrations in place, read-only readers, idempotent upserts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from turbomode_dagster.storage import sqlite as db
from turbomode_dagster.storage.market_db import MIGRATIONS, MarketDataReader, MarketDBWriter, market_db_path
from turbomode_dagster_tests.conftest import dump_tables

BARS = pd.DataFrame(
    {
        "symbol": ["AAPL", "AAPL", "MSFT"],
        "date": ["2026-11-24", "2026-11-25", "2026-11-25"],
        "open": [100.0, 101.0, 400.0],
        "high": [102.0, 103.0, 405.0],
        "low": [99.0, 100.5, 398.0],
        "close": [101.0, 102.5, 401.0],
        "volume": [1_000, 2_000, 3_000],
        "source": ["fake", "fake", "other"],
    }
)


@pytest.fixture
def writer(db_path: Path):
    handle = MarketDBWriter(db_path)
    yield handle
    handle.close()


def write_bars(writer: MarketDBWriter, bars: pd.DataFrame, stamp: str) -> int:
    with writer.transaction():
        return writer.upsert("daily_bars", bars, "source", stamp)


def test_db_lives_under_the_home(home: Path) -> None:
    assert market_db_path(home) == home / "market_data.db"


def test_writer_opens_in_wal_mode_with_a_schema_version(writer: MarketDBWriter) -> None:
    assert writer.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.schema_version(writer.con) == len(MIGRATIONS) == 2
    versions = [r[0] for r in writer.con.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [1, 2]
    assert {"daily_bars", "splits", "dividends", "fundamentals", "symbol_metadata", "quarantine"} <= (
        db.table_names(writer.con)
    )


def test_migrations_upgrade_an_older_file_in_place(db_path: Path) -> None:
    con = db.connect_read_write(db_path)
    assert db.migrate(con, MIGRATIONS[:1]) == 1
    con.execute(
        "INSERT INTO daily_bars VALUES ('AAPL', '2026-11-25', 1.0, 2.0, 0.5, 1.5, 10, 'old', '2026-11-25T00:00:00')"
    )
    con.close()

    writer = MarketDBWriter(db_path)
    try:
        assert db.schema_version(writer.con) == 2
        assert writer.con.execute("SELECT * FROM daily_bars").fetchall() == [
            ("AAPL", "2026-11-25", 1.0, 2.0, 0.5, 1.5, 10, "old", "2026-11-25T00:00:00")
        ]
        indexes = {r[0] for r in writer.con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"daily_bars_by_date", "fundamentals_by_availability"} <= indexes
    finally:
        writer.close()
    # Opening again applies nothing twice.
    MarketDBWriter(db_path).close()
    assert dump_tables(db_path)["schema_version"][-1][0] == 2
    assert len(dump_tables(db_path)["schema_version"]) == 2


def test_a_file_newer_than_the_code_is_refused(db_path: Path) -> None:
    con = db.connect_read_write(db_path)
    db.migrate(con, [*MIGRATIONS, "CREATE TABLE future (x INTEGER)"])
    con.close()
    with pytest.raises(RuntimeError, match="newer than this code knows"):
        MarketDBWriter(db_path)


def test_a_failing_migration_leaves_the_file_at_its_old_version(db_path: Path) -> None:
    con = db.connect_read_write(db_path)
    db.migrate(con, MIGRATIONS[:1])
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(con, [MIGRATIONS[0], "CREATE TABLE half (x INTEGER); CREATE TABLE broken ("])
    assert db.schema_version(con) == 1
    assert "half" not in db.table_names(con)
    con.close()


def test_a_reader_on_a_missing_file_says_to_run_ingestion(db_path: Path) -> None:
    with pytest.raises(db.DatabaseMissing) as caught:
        MarketDataReader(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert "run_ingestion" in message
    assert isinstance(caught.value, FileNotFoundError)
    assert not db_path.exists(), "a reader must not create the database"


def test_upsert_is_idempotent_and_updates_changed_values(writer: MarketDBWriter, db_path: Path) -> None:
    assert write_bars(writer, BARS, "2026-11-25T22:45:00+00:00") == 3
    once = dump_tables(db_path)
    write_bars(writer, BARS, "2026-11-26T22:45:00+00:00")
    assert dump_tables(db_path) == once, "same rows again must leave every byte (ingested_at too) alone"

    changed = BARS.copy()
    changed.loc[2, "close"] = 402.0
    write_bars(writer, changed, "2026-11-27T22:45:00+00:00")
    rows = {(r[0], r[1]): r for r in dump_tables(db_path)["daily_bars"]}
    assert rows[("MSFT", "2026-11-25")][5] == 402.0
    assert rows[("MSFT", "2026-11-25")][8] == "2026-11-27T22:45:00+00:00"
    assert rows[("AAPL", "2026-11-25")][8] == "2026-11-25T22:45:00+00:00"
    assert len(rows) == 3


def test_a_new_source_for_the_same_values_is_recorded(writer: MarketDBWriter, db_path: Path) -> None:
    write_bars(writer, BARS, "t0")
    write_bars(writer, BARS.assign(source="csv"), "t1")
    assert {r[7] for r in dump_tables(db_path)["daily_bars"]} == {"csv"}


def test_a_failed_transaction_writes_nothing(writer: MarketDBWriter, db_path: Path) -> None:
    write_bars(writer, BARS.iloc[:1], "t0")
    before = dump_tables(db_path)
    with pytest.raises(RuntimeError), writer.transaction():
        writer.upsert("daily_bars", BARS, "source", "t1")
        raise RuntimeError("boom")
    assert dump_tables(db_path) == before


def test_quarantine_stores_the_same_rejection_once(writer: MarketDBWriter, db_path: Path) -> None:
    rejected = pd.DataFrame(
        {
            "table_name": ["daily_bars"],
            "symbol": ["AAPL"],
            "date": ["2026-11-25"],
            "reason": ["negative volume"],
            "payload": ['{"volume": -1}'],
            "source": ["fake"],
        }
    )
    for stamp in ("t0", "t1"):
        with writer.transaction():
            assert writer.quarantine(rejected, "2026-11-25", stamp) == 1
    assert dump_tables(db_path)["quarantine"] == [
        ("daily_bars", "AAPL", "2026-11-25", "negative volume", '{"volume": -1}', "fake", "2026-11-25", "t0")
    ]


def test_last_bar_dates_look_strictly_before(writer: MarketDBWriter) -> None:
    write_bars(writer, BARS, "t0")
    assert writer.last_bar_dates(before="2026-11-25") == {"AAPL": "2026-11-24"}
    assert writer.last_bar_dates(before="2026-11-27") == {"AAPL": "2026-11-25", "MSFT": "2026-11-25"}


def test_reader_filters_bars_and_fundamentals_point_in_time(writer: MarketDBWriter, db_path: Path) -> None:
    fundamentals = pd.DataFrame(
        {
            "symbol": ["AAPL", "AAPL"],
            "period_end": ["2026-06-30", "2026-09-30"],
            "available_date": ["2026-08-01", "2026-11-01"],
            "revenue": [1.0, 2.0],
            "net_income": [0.1, None],
            "eps": [0.5, 0.6],
            "book_value_per_share": [3.0, 3.1],
            "shares_outstanding": [1e6, 1e6],
            "source": "fake",
        }
    )
    write_bars(writer, BARS, "t0")
    with writer.transaction():
        writer.upsert("fundamentals", fundamentals, "source", "t0")
    reader = MarketDataReader(db_path)
    try:
        bars = reader.bars(symbols=["AAPL"], start="2026-11-25", end="2026-11-25")
        assert bars[["symbol", "date", "close", "source"]].values.tolist() == [["AAPL", "2026-11-25", 102.5, "fake"]]
        assert len(reader.bars()) == 3
        known = reader.fundamentals(known_by="2026-10-31")
        assert known["period_end"].tolist() == ["2026-06-30"]
        assert reader.fundamentals()["net_income"].isna().tolist() == [False, True]
        assert reader.splits().empty and reader.dividends().empty and reader.metadata().empty
    finally:
        reader.close()
