"""The columnar bulk-read path: the same frames the sqlite3 path gave, and no way to write through it."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import adbc_driver_manager.dbapi
import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.features.history import load_history
from turbomode_dagster.prices import adjusted_bars
from turbomode_dagster.sources.sample import SampleSource
from turbomode_dagster.storage.market_db import MarketDataReader, MarketDBWriter
from turbomode_dagster_tests.conftest import dump_tables
from turbomode_dagster_tests.master_db_guard import fingerprint, master_db_untouched

SYMBOLS = [f"S{i:04d}" for i in range(12)]
AS_OF = "2012-06-29"
# More rows than the driver's default batch (1,024), NULL in the first ones: the type-inference trap.
LATE_FIGURES = 1_500


def _sample_db(path: Path) -> Path:
    """The sample market (12 symbols, 2010-2012) written by the ingestion writer, plus rows with NULLs and splits."""
    batch = SampleSource(seed=7).fetch(SYMBOLS, dt.date(2010, 1, 4), dt.date(2012, 12, 31))
    extra_fundamentals = pd.DataFrame(
        {
            "symbol": "ZNULL",
            "period_end": [f"{1900 + i // 12:04d}-{i % 12 + 1:02d}-28" for i in range(LATE_FIGURES)],
            "available_date": "2011-01-03",
            "revenue": [None] * (LATE_FIGURES - 1) + [1e9],
            "net_income": None,
            "eps": np.linspace(0.1, 2.0, LATE_FIGURES),
            "book_value_per_share": None,
            "shares_outstanding": None,
        }
    )
    extra_metadata = pd.DataFrame(
        [("ZNULL", None, None, None, None, None)],
        columns=["symbol", "name", "sector", "industry", "exchange", "currency"],
    )
    splits = pd.DataFrame(
        {"symbol": [SYMBOLS[0], SYMBOLS[3]], "date": ["2011-03-01", "2012-02-01"], "ratio": [2.0, 0.5]}
    )
    writer = MarketDBWriter(path)
    with writer.transaction():
        for table, frame in [
            ("daily_bars", batch.bars),
            ("splits", batch.splits),
            ("splits", splits),
            ("dividends", batch.dividends),
            ("fundamentals", batch.fundamentals),
            ("fundamentals", extra_fundamentals),
            ("symbol_metadata", batch.metadata),
            ("symbol_metadata", extra_metadata),
        ]:
            writer.upsert(table, frame.assign(source="sample"), "source", "t0")
    writer.close()
    return path


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _sample_db(tmp_path_factory.mktemp("columnar") / "market_data.db")


@pytest.fixture
def reader(sample_db: Path):
    handle = MarketDataReader(sample_db)
    yield handle
    handle.close()


def _sqlite3_frame(db: Path, sql: str, params: list[object] | None = None) -> pd.DataFrame:
    """The old bulk path, as it was: pandas.read_sql_query over a mode=ro sqlite3 connection."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(sql, con, params=params or [])
    finally:
        con.close()


IN = ", ".join("?" * len(SYMBOLS))
OLD_PATH = {
    "bars": (
        "SELECT symbol, date, open, high, low, close, volume, source FROM daily_bars "
        f"WHERE symbol IN ({IN}) AND date <= ? ORDER BY symbol, date",
        [*SYMBOLS, AS_OF],
        lambda r: r.bars(symbols=SYMBOLS, end=AS_OF),
    ),
    "bars_window": (
        "SELECT symbol, date, open, high, low, close, volume, source FROM daily_bars "
        "WHERE date >= ? AND date <= ? ORDER BY symbol, date",
        ["2011-03-01", "2011-03-01"],
        lambda r: r.bars(start="2011-03-01", end="2011-03-01"),
    ),
    "closes": ("SELECT symbol, date, close FROM daily_bars ORDER BY symbol, date", [], lambda r: r.closes()),
    "splits": (
        f"SELECT symbol, date, ratio FROM splits WHERE symbol IN ({IN}) ORDER BY symbol, date",
        SYMBOLS,
        lambda r: r.splits(symbols=SYMBOLS),
    ),
    "dividends": (
        f"SELECT symbol, ex_date, amount FROM dividends WHERE symbol IN ({IN}) ORDER BY symbol, ex_date",
        SYMBOLS,
        lambda r: r.dividends(symbols=SYMBOLS),
    ),
    "fundamentals": (
        "SELECT symbol, period_end, available_date, revenue, net_income, eps, book_value_per_share, "
        "shares_outstanding FROM fundamentals WHERE available_date <= ? ORDER BY symbol, period_end",
        [AS_OF],
        lambda r: r.fundamentals(known_by=AS_OF),
    ),
    "metadata": (
        "SELECT symbol, name, sector, industry, exchange, currency FROM symbol_metadata ORDER BY symbol",
        [],
        lambda r: r.metadata(),
    ),
}


@pytest.mark.parametrize("name", list(OLD_PATH))
def test_every_bulk_read_equals_the_sqlite3_path(sample_db: Path, reader: MarketDataReader, name: str) -> None:
    sql, params, read = OLD_PATH[name]
    old, new = _sqlite3_frame(sample_db, sql, params), read(reader)
    assert len(new) > 0
    pd.testing.assert_frame_equal(new, old, check_exact=True)


def test_types_are_the_tables_own(reader: MarketDataReader) -> None:
    """Dates as ISO strings, prices as float64, volume as int64, a NULL as NaN (REAL) or None (TEXT)."""
    bars = reader.bars(symbols=SYMBOLS[:1])
    assert bars.dtypes.astype(str).to_dict() == {
        "symbol": "object", "date": "object", "open": "float64", "high": "float64", "low": "float64",
        "close": "float64", "volume": "int64", "source": "object",
    }  # fmt: skip
    assert isinstance(bars["date"].iloc[0], str) and bars["date"].iloc[0] == "2010-01-04"
    figures = reader.fundamentals(symbols=["ZNULL"])
    assert len(figures) == LATE_FIGURES
    assert figures["revenue"].dtype == "float64" and figures["revenue"].isna().sum() == LATE_FIGURES - 1
    assert figures["revenue"].iloc[-1] == 1e9
    # A column NULL in every row is still the declared type (sqlite3 gave object None here).
    assert figures["net_income"].dtype == "float64" and figures["net_income"].isna().all()
    (unnamed,) = reader.metadata().query("symbol == 'ZNULL'").itertuples(index=False)
    assert unnamed.sector is None and unnamed.name is None


def test_an_empty_result_keeps_its_types(reader: MarketDataReader) -> None:
    none = reader.bars(symbols=["NOPE"])
    assert none.empty
    assert none.dtypes.astype(str).tolist() == ["object", "object", *["float64"] * 4, "int64", "object"]
    assert reader.splits(symbols=["NOPE"])["ratio"].dtype == "float64"


def test_the_adjusted_history_is_the_one_the_sqlite3_path_built(sample_db: Path, reader: MarketDataReader) -> None:
    """load_history, which every bulk consumer goes through, over the old path's raw frames gives the same panel."""
    history = load_history(reader, SYMBOLS, AS_OF)
    sql, params, _ = OLD_PATH["bars"]
    old_raw = _sqlite3_frame(sample_db, sql, params)
    old_splits = _sqlite3_frame(sample_db, OLD_PATH["splits"][0], SYMBOLS)
    old_dividends = _sqlite3_frame(sample_db, OLD_PATH["dividends"][0], SYMBOLS)
    old = adjusted_bars(old_raw, old_splits, old_dividends).assign(date=lambda f: pd.to_datetime(f["date"]))
    pd.testing.assert_frame_equal(history.bars, old[history.bars.columns].reset_index(drop=True), check_exact=True)
    assert (history.bars["close"] != history.bars["close_raw"]).any(), "the splits and dividends were applied"


STATEMENTS = [
    "INSERT INTO daily_bars VALUES ('X', '2026-11-25', 1, 1, 1, 1, 1, 's', 't')",
    "DELETE FROM daily_bars",
    "UPDATE daily_bars SET close = 0",
    "CREATE TABLE sneaky (x INTEGER)",
    "DROP TABLE daily_bars",
    "CREATE TEMP TABLE sneaky (x INTEGER)",
]


def _connection(reader: MarketDataReader) -> adbc_driver_manager.dbapi.Connection:
    """The reader's private ADBC connection, which a test reaches into to try what no caller can."""
    return reader._arrow._con


@pytest.mark.parametrize("statement", STATEMENTS)
def test_a_write_through_the_readers_own_connection_fails(sample_db: Path, statement: str) -> None:
    before = dump_tables(sample_db)
    reader = MarketDataReader(sample_db)
    try:
        with _connection(reader).cursor() as cursor, pytest.raises(adbc_driver_manager.dbapi.Error, match="readonly"):
            cursor.execute(statement)
            _connection(reader).commit()
    finally:
        reader.close()
    assert dump_tables(sample_db) == before


@pytest.mark.parametrize("statement", STATEMENTS[:5])
def test_the_adbc_connection_is_read_only_by_how_it_is_opened(sample_db: Path, statement: str) -> None:
    """With query_only switched off, the mode=ro URI alone still refuses every write to the file."""
    before = dump_tables(sample_db)
    reader = MarketDataReader(sample_db)
    try:
        with _connection(reader).cursor() as cursor:
            cursor.execute("PRAGMA query_only = OFF")
            with pytest.raises(adbc_driver_manager.dbapi.Error, match="readonly"):
                cursor.execute(statement)
                _connection(reader).commit()
    finally:
        reader.close()
    assert dump_tables(sample_db) == before


def test_an_attached_read_write_copy_of_the_file_is_refused_by_query_only(sample_db: Path) -> None:
    """ADBC has no authorizer, so ATTACH itself goes through; query_only still refuses the write."""
    before = dump_tables(sample_db)
    reader = MarketDataReader(sample_db)
    try:
        with _connection(reader).cursor() as cursor:
            cursor.execute(f"ATTACH '{sample_db.resolve().as_uri()}?mode=rw' AS rw")
            with pytest.raises(adbc_driver_manager.dbapi.Error, match="readonly"):
                cursor.execute("DELETE FROM rw.daily_bars")
    finally:
        reader.close()
    assert dump_tables(sample_db) == before


def test_the_reader_takes_no_sql_and_hands_out_no_connection() -> None:
    public = {name for name in vars(MarketDataReader) if not name.startswith("_")}
    assert public == {
        "bars",
        "closes",
        "splits",
        "dividends",
        "fundamentals",
        "metadata",
        "close",
        "first_bar_date",
        "ingested_labels",
    }


def test_a_whole_history_read_leaves_every_byte_of_the_file_alone(tmp_path: Path) -> None:
    """What the audit hook cannot see (ADBC opens SQLite in C), the file's sha256 and its WAL's can."""
    db = _sample_db(tmp_path / "market_data.db")
    assert fingerprint(db), "the guard has bytes to compare"
    with master_db_untouched(db):
        reader = MarketDataReader(db)
        try:
            load_history(reader, SYMBOLS, AS_OF)
            reader.closes()
        finally:
            reader.close()
