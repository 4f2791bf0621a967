"""The Master Market Data DB: schema, migrations, the ingestion writer and the read-only reader.

Prices are stored as traded (unadjusted) beside splits and dividends; `turbomode_dagster.prices`
derives adjusted prices. Only ingestion gets a `MarketDBWriter`; every other consumer gets a
`MarketDataReader`, which reads through the columnar path (`storage.columnar`, ADBC opened `mode=ro`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa

from turbomode_dagster.storage.columnar import ArrowReader
from turbomode_dagster.storage.sqlite import (
    connect_read_write,
    migrate,
    transaction,
)

FILE_NAME = "market_data.db"
UPSERT_BATCH_ROWS = 50_000  # rows turned into Python tuples at a time by `upsert`

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE symbol_metadata (
        symbol TEXT PRIMARY KEY, name TEXT, sector TEXT, industry TEXT, exchange TEXT, currency TEXT,
        source TEXT NOT NULL, updated_at TEXT NOT NULL);
    CREATE TABLE daily_bars (
        symbol TEXT NOT NULL, date TEXT NOT NULL, open REAL NOT NULL, high REAL NOT NULL,
        low REAL NOT NULL, close REAL NOT NULL, volume INTEGER NOT NULL, source TEXT NOT NULL,
        ingested_at TEXT NOT NULL, PRIMARY KEY (symbol, date)) WITHOUT ROWID;
    CREATE TABLE splits (
        symbol TEXT NOT NULL, date TEXT NOT NULL, ratio REAL NOT NULL CHECK (ratio > 0),
        source TEXT NOT NULL, ingested_at TEXT NOT NULL, PRIMARY KEY (symbol, date));
    CREATE TABLE dividends (
        symbol TEXT NOT NULL, ex_date TEXT NOT NULL, amount REAL NOT NULL CHECK (amount >= 0),
        source TEXT NOT NULL, ingested_at TEXT NOT NULL, PRIMARY KEY (symbol, ex_date));
    CREATE TABLE fundamentals (
        symbol TEXT NOT NULL, period_end TEXT NOT NULL, available_date TEXT NOT NULL,
        revenue REAL, net_income REAL, eps REAL, book_value_per_share REAL, shares_outstanding REAL,
        source TEXT NOT NULL, ingested_at TEXT NOT NULL, PRIMARY KEY (symbol, period_end));
    CREATE TABLE quarantine (
        table_name TEXT NOT NULL, symbol TEXT NOT NULL, date TEXT NOT NULL, reason TEXT NOT NULL,
        payload TEXT NOT NULL, source TEXT NOT NULL, partition_date TEXT NOT NULL,
        quarantined_at TEXT NOT NULL, PRIMARY KEY (table_name, symbol, date, reason));
    CREATE TABLE ingestion_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, partition_date TEXT NOT NULL, run_id TEXT,
        started_at TEXT NOT NULL, finished_at TEXT NOT NULL, status TEXT NOT NULL,
        rows_by_source TEXT NOT NULL, failures TEXT NOT NULL, quarantined INTEGER NOT NULL)
    """,
    # v2: one day's bars across the universe (the scanner's and the checks' query) by index.
    """
    CREATE INDEX daily_bars_by_date ON daily_bars (date);
    CREATE INDEX fundamentals_by_availability ON fundamentals (symbol, available_date)
    """,
)

VALUE_COLUMNS = {
    "daily_bars": (("symbol", "date"), ("open", "high", "low", "close", "volume")),
    "splits": (("symbol", "date"), ("ratio",)),
    "dividends": (("symbol", "ex_date"), ("amount",)),
    "fundamentals": (
        ("symbol", "period_end"),
        ("available_date", "revenue", "net_income", "eps", "book_value_per_share", "shares_outstanding"),
    ),
    "symbol_metadata": (("symbol",), ("name", "sector", "industry", "exchange", "currency")),
}
STAMP_COLUMN = {"symbol_metadata": "updated_at"}


# What each bulk read returns, in the tables' own types (dates are ISO TEXT in SQLite and stay strings).
TEXT, REAL, INTEGER = pa.string(), pa.float64(), pa.int64()
PRICES = [("open", REAL), ("high", REAL), ("low", REAL), ("close", REAL)]
FIGURES = ["revenue", "net_income", "eps", "book_value_per_share", "shares_outstanding"]
SCHEMAS = {
    "bars": pa.schema([("symbol", TEXT), ("date", TEXT), *PRICES, ("volume", INTEGER), ("source", TEXT)]),
    "closes": pa.schema([("symbol", TEXT), ("date", TEXT), ("close", REAL)]),
    "first_date": pa.schema([("date", TEXT)]),
    "splits": pa.schema([("symbol", TEXT), ("date", TEXT), ("ratio", REAL)]),
    "dividends": pa.schema([("symbol", TEXT), ("ex_date", TEXT), ("amount", REAL)]),
    "fundamentals": pa.schema(
        [("symbol", TEXT), ("period_end", TEXT), ("available_date", TEXT), *((f, REAL) for f in FIGURES)]
    ),
    "metadata": pa.schema([(c, TEXT) for c in ("symbol", "name", "sector", "industry", "exchange", "currency")]),
    "ingestions": pa.schema([("partition_date", TEXT)]),
}


def market_db_path(home: Path) -> Path:
    """Where the Master DB lives under TURBOMODE_HOME."""
    return home / FILE_NAME


class MarketDBWriter:
    """Read-write access for ingestion: idempotent upserts, quarantine and the ingestion log."""

    def __init__(self, path: Path):
        self.path = path
        self.con = connect_read_write(path)
        migrate(self.con, MIGRATIONS)

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    @contextmanager
    def transaction(self) -> Iterator[MarketDBWriter]:
        """Everything written inside lands together, or nothing does."""
        with transaction(self.con):
            yield self

    def upsert(self, table: str, frame: pd.DataFrame, source_column: str, stamp: str) -> int:
        """Insert or update rows by key; a row whose values are unchanged is left untouched.

        Returns the number of rows offered. Leaving unchanged rows alone keeps `ingested_at` stable,
        so re-running a partition leaves the file byte-for-byte as one run did.
        """
        if frame.empty:
            return 0
        keys, values = VALUE_COLUMNS[table]
        stamp_column = STAMP_COLUMN.get(table, "ingested_at")
        columns = [*keys, *values, "source", stamp_column]
        rows = frame.assign(source=frame[source_column], **{stamp_column: stamp})[columns]
        changed = ", ".join(f"{c} = excluded.{c}" for c in (*values, "source", stamp_column))
        incoming = ", ".join(f"excluded.{c}" for c in values)
        differs = f"({', '.join(values)}, source) IS NOT ({incoming}, excluded.source)"
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {changed} WHERE {differs}"
        )
        for start in range(0, len(rows), UPSERT_BATCH_ROWS):  # Python tuples cost ~10x the frame: convert a batch
            self.con.executemany(sql, _records(rows.iloc[start : start + UPSERT_BATCH_ROWS]))
        return len(rows)

    def quarantine(self, rejected: pd.DataFrame, partition_date: str, stamp: str) -> int:
        """Record rejected rows with their reason; the same rejection twice is stored once."""
        if rejected.empty:
            return 0
        rows = [
            (r.table_name, r.symbol, r.date, r.reason, r.payload, r.source, partition_date, stamp)
            for r in rejected.itertuples(index=False)
        ]
        self.con.executemany(
            "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (table_name, symbol, date, reason) DO UPDATE SET payload = excluded.payload "
            "WHERE payload IS NOT excluded.payload",
            rows,
        )
        return len(rows)

    def log_ingestion(self, entry: dict) -> None:
        """Append one row to ingestion_log (an audit trail, so it grows by one row a run)."""
        self.con.execute(
            "INSERT INTO ingestion_log (partition_date, run_id, started_at, finished_at, status, "
            "rows_by_source, failures, quarantined) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry["partition_date"],
                entry.get("run_id"),
                entry["started_at"],
                entry["finished_at"],
                entry["status"],
                json.dumps(entry["rows_by_source"], sort_keys=True),
                json.dumps(entry["failures"], sort_keys=True),
                entry["quarantined"],
            ),
        )

    def last_closes_before(self, day: str) -> pd.DataFrame:
        """Each symbol's last stored bar before `day` (symbol, date, close): what new bars' jumps are measured from."""
        return pd.read_sql_query(
            "SELECT symbol, date, close FROM daily_bars JOIN "
            "(SELECT symbol, MAX(date) AS date FROM daily_bars WHERE date < ? GROUP BY symbol) USING (symbol, date)",
            self.con,
            params=[day],
        )

    def splits(self) -> pd.DataFrame:
        """Every stored split (symbol, date, ratio)."""
        return pd.read_sql_query("SELECT symbol, date, ratio FROM splits", self.con)

    def last_bar_dates(self, before: str) -> dict[str, str]:
        """Each symbol's latest stored bar date strictly before `before`."""
        rows = self.con.execute(
            "SELECT symbol, MAX(date) FROM daily_bars WHERE date < ? GROUP BY symbol", (before,)
        ).fetchall()
        return dict(rows)


def _records(frame: pd.DataFrame) -> list[tuple]:
    """Rows as plain Python tuples (numpy scalars and NaN become SQLite-friendly values)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [tuple(_plain(v) for v in row) for row in clean.itertuples(index=False, name=None)]


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


class MarketDataReader:
    """Read-only bulk access to the Master DB for every task but ingestion, through the columnar path.

    Each method is one fixed SELECT whose values are bound as parameters; there is no way to hand it SQL,
    because its ADBC connection has no authorizer (see `storage.columnar`). Frames carry the types the
    schema declares: dates as ISO strings, prices as float64, volume as int64, NULL as NaN or None.
    """

    def __init__(self, path: Path):
        self.path = path
        self._arrow = ArrowReader(path)

    def close(self) -> None:
        """Close the connection."""
        self._arrow.close()

    def bars(
        self, symbols: Sequence[str] | None = None, start: str | None = None, end: str | None = None
    ) -> pd.DataFrame:
        """Daily bars as traded, sorted by symbol and date, optionally limited by symbols and dates."""
        where, params = _filters(symbols, "date", start, end)
        return self._arrow.frame(
            f"SELECT symbol, date, open, high, low, close, volume, source FROM daily_bars{where} ORDER BY symbol, date",
            params,
            SCHEMAS["bars"],
        )

    def first_bar_date(self, symbols: Sequence[str] | None = None) -> str | None:
        """The earliest session any of `symbols` has a bar on (None for none): where the stored history starts."""
        where, params = _filters(symbols, "date", None, None)
        frame = self._arrow.frame(f"SELECT MIN(date) AS date FROM daily_bars{where}", params, SCHEMAS["first_date"])
        return frame["date"].iloc[0] if len(frame) else None

    def closes(self) -> pd.DataFrame:
        """Every stored close (symbol, date, close), sorted: the whole history the jump check guards."""
        return self._arrow.frame(
            "SELECT symbol, date, close FROM daily_bars ORDER BY symbol, date", (), SCHEMAS["closes"]
        )

    def splits(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Splits as new shares per old share."""
        where, params = _filters(symbols, "date", None, None)
        return self._arrow.frame(
            f"SELECT symbol, date, ratio FROM splits{where} ORDER BY symbol, date", params, SCHEMAS["splits"]
        )

    def dividends(self, symbols: Sequence[str] | None = None) -> pd.DataFrame:
        """Cash dividends per share (traded basis) by ex-date."""
        where, params = _filters(symbols, "ex_date", None, None)
        return self._arrow.frame(
            f"SELECT symbol, ex_date, amount FROM dividends{where} ORDER BY symbol, ex_date",
            params,
            SCHEMAS["dividends"],
        )

    def fundamentals(self, symbols: Sequence[str] | None = None, known_by: str | None = None) -> pd.DataFrame:
        """Quarterly fundamentals, optionally only those available by `known_by` (point in time)."""
        where, params = _filters(symbols, "available_date", None, known_by)
        return self._arrow.frame(
            "SELECT symbol, period_end, available_date, revenue, net_income, eps, book_value_per_share, "
            f"shares_outstanding FROM fundamentals{where} ORDER BY symbol, period_end",
            params,
            SCHEMAS["fundamentals"],
        )

    def metadata(self) -> pd.DataFrame:
        """One row per symbol: name, sector, industry, exchange, currency."""
        return self._arrow.frame(
            "SELECT symbol, name, sector, industry, exchange, currency FROM symbol_metadata ORDER BY symbol",
            (),
            SCHEMAS["metadata"],
        )

    def ingested_labels(self) -> list[str]:
        """Every session or range (`A...B`) an ingestion committed here: which sessions this Master DB holds."""
        frame = self._arrow.frame(
            "SELECT DISTINCT partition_date FROM ingestion_log ORDER BY partition_date", (), SCHEMAS["ingestions"]
        )
        return frame["partition_date"].tolist()


def _filters(
    symbols: Sequence[str] | None, date_column: str, start: str | None, end: str | None
) -> tuple[str, list[object]]:
    clauses, params = [], []
    if symbols is not None:
        clauses.append(f"symbol IN ({', '.join('?' * len(symbols))})")
        params.extend(symbols)
    if start:
        clauses.append(f"{date_column} >= ?")
        params.append(start)
    if end:
        clauses.append(f"{date_column} <= ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
