"""Shared fixtures: a throw-away TURBOMODE_HOME, a small config, a deterministic fake source, table dumps.

Everything here is tiny on purpose (three symbols, a few weeks of sessions) so the suite stays fast on a
2-core machine. `FakeSource` is importable (`from turbomode_dagster_tests.conftest import FakeSource`)
so subprocess tests can use it too.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.config import SHIPPED_CONFIG, Settings, load_settings
from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    FUNDAMENTAL_COLUMNS,
    METADATA_COLUMNS,
    SPLIT_COLUMNS,
    MarketDataBatch,
    SourceUnavailable,
)

UNIVERSE = ["AAPL", "MSFT", "NVDA"]
HISTORY_START = "2026-11-02"
DAY = "2026-11-25"  # the Wednesday before Thanksgiving (2026-11-26, NYSE closed)
ENV_VARS = (
    "TURBOMODE_HOME",
    "TURBOMODE_CONFIG",
    "TURBOMODE_SOURCES",
    "TURBOMODE_DASK_SCHEDULER",
    "TURBOMODE_ASSETS_URL",
    "TURBOMODE_DATASETS_URL",
    "DAGSTER_HOME",
)


def trust_the_instance_for_the_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the home to hold whatever the Dagster instance records, as a home written before datasets kept
    their record is: for tests of timing and launching (the home's own record is test_catch_up's)."""
    from turbomode_dagster.orchestration import partitions

    monkeypatch.setattr(partitions, "held_sessions", lambda home, keys: dict.fromkeys(keys))


def shipped_config() -> dict:
    """The shipped scheduler_config.json, decoded (a fresh copy each call)."""
    return json.loads(SHIPPED_CONFIG.read_text())


def patch_config(raw: dict, patches: dict[str, object]) -> dict:
    """Set dotted keys ('sources.order', 'history.start_date') in a decoded config, in place."""
    for dotted, value in patches.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return raw


def write_config(path: Path, patches: dict[str, object] | None = None) -> Path:
    """Write the shipped config with `patches` applied to `path`."""
    raw = patch_config(shipped_config(), patches or {})
    path.write_text(json.dumps(raw, indent=2))
    return path


SMALL_PATCHES = {
    "universe.symbols": UNIVERSE,
    "history.start_date": HISTORY_START,
    "sources.order": ["csv"],  # never fetched: tests hand the assets a chain of FakeSource
}


class FakeSource:
    """A deterministic in-memory MarketDataSource that can be told to fail.

    Prices are a pure function of (symbol, date), so any fetch window gives the same numbers for a day.
    - `serves`: the symbols it knows (default: all); others are reported in `failures`.
    - `unavailable`: raise SourceUnavailable with this message on every fetch.
    - `splits`: {(symbol, date): ratio}; traded prices from that date on are divided by a positive ratio.
    - `overrides`: {(symbol, date): {field: value}} patched onto generated bars (bad values, jumps).
    - `extra_bars`: raw bar dicts appended to every fetch (duplicates, holidays, malformed dates).
    - `dividends`: {(symbol, ex_date): amount}.
    `calls` records (symbols, start, end) of every fetch.
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        serves: list[str] | None = None,
        unavailable: str | None = None,
        splits: dict[tuple[str, str], float] | None = None,
        dividends: dict[tuple[str, str], float] | None = None,
        overrides: dict[tuple[str, str], dict[str, object]] | None = None,
        extra_bars: list[dict[str, object]] | None = None,
    ):
        self.name = name
        self.serves = None if serves is None else set(serves)
        self.unavailable = unavailable
        self.splits = splits or {}
        self.dividends = dividends or {}
        self.overrides = overrides or {}
        self.extra_bars = extra_bars or []
        self.calls: list[tuple[list[str], dt.date, dt.date]] = []

    @staticmethod
    def base_close(symbol: str, day: str) -> float:
        """The traded close before any split: 50..149 by symbol, a small weekly wiggle by date."""
        base = 50 + zlib.crc32(symbol.encode()) % 100
        return round(base * (1 + 0.002 * (dt.date.fromisoformat(day).toordinal() % 7)), 2)

    def bar(self, symbol: str, day: str) -> dict[str, object]:
        """One valid bar as traded (low <= open, close <= high)."""
        divisor = 1.0
        for (split_symbol, split_day), ratio in self.splits.items():
            if split_symbol == symbol and day >= split_day and ratio > 0:
                divisor *= ratio
        close = round(self.base_close(symbol, day) / divisor, 2)
        open_ = round(close * 0.995, 2)
        row = {
            "symbol": symbol,
            "date": day,
            "open": open_,
            "high": round(max(open_, close) * 1.01, 2),
            "low": round(min(open_, close) * 0.99, 2),
            "close": close,
            "volume": 1_000_000 + dt.date.fromisoformat(day).toordinal() % 1000,
        }
        row.update(self.overrides.get((symbol, day), {}))
        return row

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        """Bars, actions, fundamentals and metadata for the served symbols over [start, end]."""
        self.calls.append((list(symbols), start, end))
        if self.unavailable:
            raise SourceUnavailable(self.unavailable)
        served = [s for s in symbols if self.serves is None or s in self.serves]
        days = calendar.sessions(start, end)
        lo, hi = start.isoformat(), end.isoformat()
        bars = [self.bar(s, d) for s in served for d in days]
        bars += [dict(r) for r in self.extra_bars if r["symbol"] in served]
        batch = MarketDataBatch(failures={s: f"{self.name} does not know {s}" for s in symbols if s not in served})
        if bars:
            batch.bars = pd.DataFrame(bars, columns=BAR_COLUMNS)
        splits = [(s, d, r) for (s, d), r in self.splits.items() if s in served and lo <= d <= hi]
        if splits:
            batch.splits = pd.DataFrame(splits, columns=SPLIT_COLUMNS)
        dividends = [(s, d, a) for (s, d), a in self.dividends.items() if s in served and lo <= d <= hi]
        if dividends:
            batch.dividends = pd.DataFrame(dividends, columns=DIVIDEND_COLUMNS)
        if served:
            batch.fundamentals = pd.DataFrame(
                [(s, "2026-09-30", "2026-10-30", 1e9, 1e8, 1.5, 20.0, 6.6e7) for s in served],
                columns=FUNDAMENTAL_COLUMNS,
            )
            batch.metadata = pd.DataFrame(
                [(s, f"{s} Corp.", "Technology", "Software", "NASDAQ", "USD") for s in served],
                columns=METADATA_COLUMNS,
            )
        return batch


def dump_tables(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table (sorted), read through a read-only handle: a full-state fingerprint."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr) for name in names}
    finally:
        con.close()


def read_table(db: Path, table: str) -> pd.DataFrame:
    """One table as a frame, read-only."""
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(f"SELECT * FROM {table}", con)
    finally:
        con.close()


@pytest.fixture(autouse=True)
def _no_outside_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's TURBOMODE_* or DAGSTER_HOME variables."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TURBOMODE_HOME (and DAGSTER_HOME beside it), set in the environment."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("TURBOMODE_HOME", str(folder))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return folder


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a copy of the shipped config with dotted keys patched: make_config(**{'a.b': v}) -> path."""
    counter = iter(range(1000))

    def make(patches: dict[str, object] | None = None, name: str | None = None) -> Path:
        return write_config(tmp_path / (name or f"config_{next(counter)}.json"), patches)

    return make


@pytest.fixture
def config_file(make_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small config (3 symbols, history from 2026-11-02), also set as TURBOMODE_CONFIG."""
    path = make_config(SMALL_PATCHES, name="small_config.json")
    monkeypatch.setenv("TURBOMODE_CONFIG", str(path))
    return path


@pytest.fixture
def small_settings(config_file: Path) -> Settings:
    """The small config, validated."""
    return load_settings(config_file)


@pytest.fixture
def db_path(home: Path) -> Path:
    """Where the Master DB goes in the temporary home."""
    return home / "market_data.db"
