"""The per-symbol fallback chain: a source that is down (remembered for the run), per-symbol failures,
symbols nobody serves."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.sources.base import MarketDataBatch
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.factory import build_chain
from turbomode_dagster.sources.outages import SourceDownEarlier
from turbomode_dagster_tests.conftest import FakeSource

SYMBOLS = ["AAPL", "MSFT", "NVDA"]
START, END = dt.date(2026, 11, 23), dt.date(2026, 11, 25)


class SlowDownSource(FakeSource):
    """A source that only fails after a wait, like a refused connection behind a timeout."""

    def __init__(self, name: str, seconds: float):
        super().__init__(name, unavailable="connection refused")
        self.seconds = seconds

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        time.sleep(self.seconds)
        return super().fetch(symbols, start, end)


def test_an_unavailable_source_sends_every_symbol_to_the_next_at_once() -> None:
    down = SlowDownSource("ibkr", 0.2)
    backup = FakeSource("yahoo")
    started = time.monotonic()
    result = SourceChain([down, backup]).fetch(SYMBOLS, START, END)
    assert time.monotonic() - started < 3
    assert len(down.calls) == 1, "a source that is down is asked once, not once per symbol"
    assert backup.calls == [(SYMBOLS, START, END)]
    assert result.rows_by_source() == {"yahoo": 9}
    assert set(result.bars["source"]) == {"yahoo"}
    assert result.failures == {}


def test_per_symbol_failures_fall_through_to_the_next_source() -> None:
    first = FakeSource("ibkr", serves=["AAPL", "NVDA"])
    second = FakeSource("yahoo")
    result = SourceChain([first, second]).fetch(SYMBOLS, START, END)
    assert second.calls == [(["MSFT"], START, END)], "only the symbols not yet served move on"
    assert result.rows_by_source() == {"ibkr": 6, "yahoo": 3}
    by_symbol = result.bars.groupby("symbol")["source"].unique().map(list).to_dict()
    assert by_symbol == {"AAPL": ["ibkr"], "MSFT": ["yahoo"], "NVDA": ["ibkr"]}
    assert dict(zip(result.metadata["symbol"], result.metadata["source"], strict=True)) == {
        "AAPL": "ibkr",
        "NVDA": "ibkr",
        "MSFT": "yahoo",
    }


def test_a_symbol_no_source_serves_is_reported_with_each_reason() -> None:
    first = FakeSource("ibkr", unavailable="connection refused on 127.0.0.1:4002")
    second = FakeSource("yahoo", serves=["AAPL", "NVDA"])
    third = FakeSource("csv", serves=["AAPL"])
    result = SourceChain([first, second, third]).fetch(SYMBOLS, START, END)
    assert result.failures == {
        "MSFT": {
            "ibkr": "unavailable: connection refused on 127.0.0.1:4002",
            "yahoo": "yahoo does not know MSFT",
            "csv": "csv does not know MSFT",
        }
    }
    assert sorted(result.bars["symbol"].unique()) == ["AAPL", "NVDA"]
    assert result.rows_by_source() == {"yahoo": 6}
    assert third.calls == [(["MSFT"], START, END)]


def test_a_source_that_returns_nothing_without_saying_why_is_reported() -> None:
    class Silent(FakeSource):
        def fetch(self, symbols, start, end):
            self.calls.append((symbols, start, end))
            return MarketDataBatch()

    result = SourceChain([Silent("quiet")]).fetch(["AAPL"], START, END)
    assert result.failures == {"AAPL": {"quiet": "returned no bars"}}
    assert result.bars.empty and "source" in result.bars.columns


def test_every_source_down_gives_empty_frames_and_all_failures() -> None:
    result = SourceChain([FakeSource("a", unavailable="dns"), FakeSource("b", unavailable="429")]).fetch(
        SYMBOLS, START, END
    )
    assert result.failures == {s: {"a": "unavailable: dns", "b": "unavailable: 429"} for s in SYMBOLS}
    for frame in (result.bars, result.splits, result.dividends, result.fundamentals, result.metadata):
        assert frame.empty and "source" in frame.columns
    assert result.rows_by_source() == {}


def test_rows_for_symbols_a_source_was_not_asked_for_are_dropped() -> None:
    class Chatty(FakeSource):
        def fetch(self, symbols, start, end):
            return super().fetch([*symbols, "SPY"], start, end)

    result = SourceChain([Chatty("chatty")]).fetch(["AAPL"], START, END)
    assert set(result.bars["symbol"]) == {"AAPL"}
    assert set(result.metadata["symbol"]) == {"AAPL"}


def test_corporate_actions_come_from_the_source_that_served_the_bars() -> None:
    first = FakeSource("ibkr", serves=["AAPL"], splits={("AAPL", "2026-11-24"): 2.0})
    second = FakeSource("yahoo", splits={("AAPL", "2026-11-24"): 3.0, ("MSFT", "2026-11-24"): 4.0})
    result = SourceChain([first, second]).fetch(["AAPL", "MSFT"], START, END)
    assert result.splits[["symbol", "ratio", "source"]].values.tolist() == [
        ["AAPL", 2.0, "ibkr"],
        ["MSFT", 4.0, "yahoo"],
    ]


def test_a_chain_needs_a_source() -> None:
    with pytest.raises(ValueError):
        SourceChain([])


WINDOWS = [dt.date(2026, 11, 2), dt.date(2026, 11, 16), dt.date(2026, 11, 23)]


def test_a_source_found_down_is_skipped_for_the_rest_of_the_run(caplog: pytest.LogCaptureFixture) -> None:
    down = FakeSource("ibkr", unavailable="connection refused")
    backup = FakeSource("yahoo")
    chain = SourceChain([down, backup])
    chain.begin_run()
    results = [chain.fetch(["AAPL"], start, END) for start in WINDOWS]
    assert len(down.calls) == 1, "a down source costs its timeout once per run, not once per window"
    assert len(backup.calls) == len(WINDOWS)
    assert all(r.rows_by_source() == {"yahoo": len(r.bars)} and r.failures == {} for r in results)
    assert results[0].unavailable == {"ibkr": "unavailable: connection refused"}
    for later in results[1:]:
        assert later.unavailable == {"ibkr": "skipped, down earlier in this run: connection refused"}
    skips = [r.getMessage() for r in caplog.records if "skipped for 1 symbols" in r.getMessage()]
    assert len(skips) == len(WINDOWS) - 1 and all("ibkr" in m and "down earlier" in m for m in skips)


def test_a_symbol_nobody_serves_says_the_source_was_skipped_and_why() -> None:
    chain = SourceChain([FakeSource("ibkr", unavailable="timed out after 10s"), FakeSource("yahoo", serves=[])])
    chain.fetch(["AAPL"], WINDOWS[0], END)
    result = chain.fetch(["AAPL"], WINDOWS[1], END)
    assert result.failures == {
        "AAPL": {"ibkr": "skipped, down earlier in this run: timed out after 10s", "yahoo": "yahoo does not know AAPL"}
    }


def test_a_new_run_tries_a_source_that_was_down_again() -> None:
    source = FakeSource("ibkr", unavailable="connection refused")
    chain = SourceChain([source, FakeSource("yahoo")])
    chain.fetch(["AAPL"], WINDOWS[0], END)
    chain.fetch(["AAPL"], WINDOWS[1], END)
    assert len(source.calls) == 1
    source.unavailable = None
    chain.begin_run()
    result = chain.fetch(["AAPL"], WINDOWS[2], END)
    assert len(source.calls) == 2
    assert result.rows_by_source() == {"ibkr": len(result.bars)} and result.unavailable == {}


def test_per_symbol_failures_do_not_mark_a_source_down() -> None:
    partial = FakeSource("ibkr", serves=["AAPL"])
    chain = SourceChain([partial, FakeSource("yahoo")])
    for start in WINDOWS:
        chain.fetch(["AAPL", "MSFT"], start, END)
    assert len(partial.calls) == len(WINDOWS)
    assert chain.outages.down == {}


def test_ibkrs_yahoo_actions_source_skips_a_yahoo_the_chain_found_down(make_config, home: Path) -> None:
    """IBKR asks Yahoo for splits and dividends: a Yahoo the chain found down must not cost its timeout there."""
    chain = build_chain(load_settings(make_config({"sources.order": ["ibkr", "yahoo"]})), home)
    actions = chain.sources[0].actions_source  # the factory's wiring; the network sources are faked below
    yahoo = FakeSource("yahoo", unavailable="timed out after 10s")
    actions.source = yahoo
    chain.sources = [FakeSource("ibkr", unavailable="connection refused"), yahoo]
    chain.fetch(["AAPL"], WINDOWS[0], END)
    with pytest.raises(SourceDownEarlier, match="down earlier in this run: timed out after 10s"):
        actions.fetch(["AAPL"], WINDOWS[1], END)
    assert len(yahoo.calls) == 1
