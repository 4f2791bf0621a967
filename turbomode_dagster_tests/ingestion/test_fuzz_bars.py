"""Property-based drill of ingestion: bad bars of every kind mixed with good ones, through a real write.

Every generated bad row must land in quarantine with a reason and never in daily_bars; every good row
must be stored exactly as sent. Bounded (max_examples, deadline) so it runs in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from turbomode_dagster import calendar
from turbomode_dagster.ingestion.checks import unexplained_jumps
from turbomode_dagster.ingestion.run import ingest_sessions
from turbomode_dagster.ingestion.validation import validate_bars
from turbomode_dagster.sources.base import BAR_COLUMNS, MarketDataBatch
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.csv import CsvSource
from turbomode_dagster.storage.market_db import MarketDBWriter
from turbomode_dagster_tests.conftest import read_table

DAY = "2026-11-25"
SEEDED = "2026-10-30"  # each symbol's stored bar before the batch: the jump rule's first reference
SESSIONS = calendar.sessions("2026-11-02", DAY)
OFF_CALENDAR = ["2026-11-07", "2026-11-08", "2026-11-15", "2026-11-22"]  # weekends
AFTER_DAY = ["2026-11-26", "2026-11-27", "2027-01-04"]
MALFORMED_DATES = ["2026-02-30", "2026-11-5", "", "24/11/2026", "2026-11-24T00:00"]
SYMBOLS = ["AAPL", "MSFT", "NVDA"]
BASE = {"AAPL": 180.0, "MSFT": 400.0, "NVDA": 0.5}
PRICES = ("open", "high", "low", "close")
BAD_NUMBERS = [math.nan, math.inf, -math.inf, 1e300, -1.0, 0.0, 2e7, 5e-5]
BAD_VOLUMES = [math.nan, math.inf, -math.inf, 1e300, 2**63, 2**64 + 1, -1, 12.5, "many"]
BAD_KINDS = ["price", "volume", "ohlc", "off_calendar", "after_day", "malformed_date", "duplicate", "jump"]


class ListSource:
    """A source that returns the generated bars whatever is asked."""

    name = "fuzz"

    def __init__(self, bars: list[dict]):
        self.bars = bars

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        return MarketDataBatch(bars=pd.DataFrame(self.bars, columns=BAR_COLUMNS))


@st.composite
def good_bar(draw: st.DrawFn, symbol: str, date: str) -> dict:
    """A valid bar within 5% of the symbol's base price, so no two good bars are a jump apart."""
    base = BASE[symbol]
    open_, close = (base * draw(st.floats(0.95, 1.05)) for _ in range(2))
    high = max(open_, close) * draw(st.floats(1.0, 1.02))
    low = min(open_, close) * draw(st.floats(0.98, 1.0))
    volume = draw(st.one_of(st.integers(0, 10**12), st.integers(0, 10**6).map(float)))
    return {"symbol": symbol, "date": date, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


@st.composite
def bad_rows(draw: st.DrawFn, symbol: str, date: str) -> list[dict]:
    """One or two rows that must all be quarantined, broken in one of BAD_KINDS."""
    row = draw(good_bar(symbol, date))
    kind = draw(st.sampled_from(BAD_KINDS))
    if kind == "price":
        row[draw(st.sampled_from(PRICES))] = draw(st.sampled_from(BAD_NUMBERS))
    elif kind == "volume":
        row["volume"] = draw(st.sampled_from(BAD_VOLUMES))
    elif kind == "ohlc":
        if draw(st.booleans()):
            row["low"] = max(row["open"], row["close"]) * 1.01
        else:
            row["high"] = min(row["open"], row["close"]) * 0.99
    elif kind == "off_calendar":
        row["date"] = draw(st.sampled_from(OFF_CALENDAR))
    elif kind == "after_day":
        row["date"] = draw(st.sampled_from(AFTER_DAY))
    elif kind == "malformed_date":
        row["date"] = draw(st.sampled_from(MALFORMED_DATES))
    elif kind == "duplicate":
        return [row, {**draw(good_bar(symbol, date))}]  # the same key twice: both copies are suspect
    else:  # a jump: three times (or a third of) the stored level, no split to explain it
        factor = draw(st.sampled_from([3.0, 1 / 3]))
        row.update({f: row[f] * factor for f in PRICES})
    return [row]


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[dict], list[dict]]:
    """(good rows, bad rows) on distinct (symbol, session) keys, so a good row never collides with a bad one."""
    keys = draw(
        st.lists(st.tuples(st.sampled_from(SYMBOLS), st.sampled_from(SESSIONS)), min_size=1, max_size=25, unique=True)
    )
    flags = draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)))
    good, bad = [], []
    for (symbol, date), is_bad in zip(keys, flags, strict=True):
        if is_bad:
            bad.extend(draw(bad_rows(symbol, date)))
        else:
            good.append(draw(good_bar(symbol, date)))
    return good, bad


def seed(writer: MarketDBWriter) -> None:
    """Each symbol's bar on SEEDED at its base price."""
    rows = pd.DataFrame(
        [
            {"symbol": s, "date": SEEDED, "open": p, "high": p, "low": p, "close": p, "volume": 1, "source": "seed"}
            for s, p in BASE.items()
        ]
    )
    with writer.transaction():
        writer.upsert("daily_bars", rows, "source", "2026-10-30T22:00:00")


def ingest(rows: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ingest `rows` into a fresh Master DB seeded with SEEDED; (stored new bars, quarantine)."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "market_data.db"
        writer = MarketDBWriter(db)
        try:
            seed(writer)
            ingest_sessions(writer, SourceChain([ListSource(rows)]), SYMBOLS, dt.date(2026, 10, 30), DAY)
        finally:
            writer.close()
        stored = read_table(db, "daily_bars")
        assert unexplained_jumps(stored, read_table(db, "splits")).empty, "what was stored passes the jump check"
        return stored[stored["date"] != SEEDED].sort_values(["symbol", "date"]), read_table(db, "quarantine")


@settings(max_examples=25, deadline=3000, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_every_bad_bar_is_quarantined_and_every_good_bar_is_stored(batch: tuple[list[dict], list[dict]]) -> None:
    good, bad = batch
    stored, quarantine = ingest([dict(r) for r in good + bad])
    expected = pd.DataFrame(good, columns=BAR_COLUMNS).sort_values(["symbol", "date"])
    assert stored[["symbol", "date"]].values.tolist() == expected[["symbol", "date"]].values.tolist()
    for column in PRICES:
        assert (stored[column].to_numpy() == expected[column].to_numpy(dtype=float)).all(), f"{column} changed"
    assert stored["volume"].tolist() == [int(v) for v in expected["volume"]]
    assert len(quarantine) == len(bad), "each bad row keeps its own quarantine row"
    assert (quarantine["reason"].str.len() > 0).all()
    assert sorted(quarantine["symbol"]) == sorted(r["symbol"] for r in bad)


def csv_line(bar: dict) -> bytes:
    return ",".join(str(bar[c]) for c in ["date", "open", "high", "low", "close", "volume"]).encode()


@settings(max_examples=40, deadline=2000, database=None)
@given(
    st.lists(st.sampled_from(SESSIONS), min_size=1, max_size=10, unique=True).flatmap(
        lambda days: st.tuples(*(good_bar("AAPL", d) for d in days))
    ),
    st.lists(st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b.strip()), max_size=6),
    st.randoms(use_true_random=False),
)
def test_a_csv_file_with_garbage_lines_keeps_every_good_row(good: tuple[dict, ...], garbage: list[bytes], rnd) -> None:
    for line in garbage:  # a line that starts with a real date outside the window is skipped, not judged
        text = line.decode("utf-8", "replace").split(",")[0].strip()
        assume(not (len(text) == 10 and text[4] == "-" and text[7] == "-"))
    lines = [csv_line(b) for b in good] + garbage
    rnd.shuffle(lines)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "AAPL.csv").write_bytes(b"\n".join([b"date,open,high,low,close,volume", *lines]))
        batch = CsvSource(Path(folder)).fetch(["AAPL"], dt.date(2026, 11, 2), dt.date(2026, 11, 25))
    assert batch.failures == {}
    accepted, rejected = validate_bars(batch.bars.assign(source="csv"), DAY)
    assert sorted(accepted["date"]) == sorted(b["date"] for b in good)
    assert len(rejected) == len(garbage)
    assert rejected["reason"].str.match(r"AAPL\.csv line \d+: ").all()
