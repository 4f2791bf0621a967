"""IBKRSource against a fake IB mimicking ib_insync's objects, the pacer on a fake clock, and a real
refused connection through ib_insync when it is installed."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import sys
import time
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.sources.base import BAR_COLUMNS, MarketDataBatch, SourceUnavailable
from turbomode_dagster.sources.ibkr import (
    HistoricalDataPacer,
    IBKRSource,
    duration_str,
    end_date_time,
    load_ib_api,
)

D = dt.date.fromisoformat


@dataclass
class BarData:
    """ib_insync.BarData as reqHistoricalData returns it for daily bars (date is a datetime.date)."""

    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float
    average: float = 0.0
    barCount: int = 0


@dataclass
class Stock:
    """ib_insync.Stock: symbol, exchange, currency; qualifyContracts fills in conId."""

    symbol: str
    exchange: str
    currency: str
    conId: int = 0


# AAPL as traded around its 2020-08-31 4:1 split, as IB's TRADES bars show it.
AAPL_BARS = [
    BarData(D("2020-08-26"), 504.72, 507.97, 500.33, 506.09, 40755600.0),
    BarData(D("2020-08-27"), 508.57, 509.94, 495.33, 500.04, 38888100.0),
    BarData(D("2020-08-28"), 504.05, 505.77, 498.31, 499.23, 46907500.0),
    BarData(D("2020-08-31"), 127.58, 131.00, 126.00, 129.04, 225702700.0),
    BarData(D("2020-09-01"), 132.76, 134.80, 130.53, 134.18, 151948100.0),
]
MSFT_BARS = [BarData(D("2020-08-28"), 228.18, 230.64, 226.58, 228.91, 26292900.0)]


class FakeIB:
    """Mimics ib_insync.IB: connect, qualifyContracts, reqHistoricalData, disconnect; records calls."""

    def __init__(self, bars=None, connect_error=None, request_errors=None):
        self.bars = {"AAPL": AAPL_BARS, "MSFT": MSFT_BARS} if bars is None else bars
        self.connect_error = connect_error
        self.request_errors = request_errors or {}
        self.connects: list[tuple[tuple, dict]] = []
        self.qualified: list[str] = []
        self.requests: list[tuple[Stock, dict]] = []
        self.disconnects = 0

    def connect(self, *args, **kwargs):
        self.connects.append((args, kwargs))
        if self.connect_error is not None:
            raise self.connect_error
        return self

    def qualifyContracts(self, *contracts):
        known = [c for c in contracts if c.symbol in self.bars]
        for c in known:
            c.conId = 1000 + len(self.qualified)
            self.qualified.append(c.symbol)
        return known

    def reqHistoricalData(self, contract, **kwargs):
        self.requests.append((contract, kwargs))
        if contract.symbol in self.request_errors:
            raise self.request_errors[contract.symbol]
        return list(self.bars[contract.symbol])

    def disconnect(self):
        self.disconnects += 1


class FakeClock:
    """A clock whose sleep advances it instantly; records each sleep."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ActionsSource:
    """A stand-in for YahooSource as the actions source: one split, or down."""

    name = "yahoo"

    def __init__(self, down: bool = False):
        self.down = down
        self.calls: list[list[str]] = []

    def fetch(self, symbols, start, end):
        self.calls.append(list(symbols))
        if self.down:
            raise SourceUnavailable("Yahoo Finance unavailable: ConnectionError")
        return MarketDataBatch(
            bars=pd.DataFrame({"symbol": ["AAPL"], "date": ["2020-08-31"]}),
            splits=pd.DataFrame({"symbol": ["AAPL"], "date": ["2020-08-31"], "ratio": [4.0]}),
        )


def make_source(ib: FakeIB, clock: FakeClock | None = None, **kwargs) -> IBKRSource:
    clock = clock or FakeClock()
    return IBKRSource(
        ib_factory=lambda: SimpleNamespace(IB=lambda: ib, Stock=Stock),
        pacing=HistoricalDataPacer(clock=clock, sleep=clock.sleep),
        **kwargs,
    )


def test_bars_as_traded_filtered_to_the_window():
    ib = FakeIB()
    batch = make_source(ib).fetch(["AAPL", "MSFT"], D("2020-08-27"), D("2020-08-31"))
    assert list(batch.bars.columns) == BAR_COLUMNS
    assert batch.failures == {}
    aapl = batch.bars[batch.bars["symbol"] == "AAPL"].set_index("date")
    assert list(aapl.index) == ["2020-08-27", "2020-08-28", "2020-08-31"]
    assert aapl.loc["2020-08-28", "close"] == 499.23 and aapl.loc["2020-08-31", "close"] == 129.04
    assert batch.bars["volume"].dtype == np.int64
    assert aapl.loc["2020-08-28", "volume"] == 46907500
    assert set(batch.bars["symbol"]) == {"AAPL", "MSFT"}


def test_requests_trades_over_regular_hours_read_only_and_disconnects():
    ib = FakeIB()
    make_source(ib, host="10.0.0.5", port=4001, client_id=3, timeout_seconds=2.5).fetch(
        ["AAPL"], D("2020-08-27"), D("2020-08-31")
    )
    assert ib.connects == [(("10.0.0.5", 4001), {"clientId": 3, "timeout": 2.5, "readonly": True})]
    (contract, request) = ib.requests[0]
    assert (contract.symbol, contract.exchange, contract.currency) == ("AAPL", "SMART", "USD")
    assert request == {
        "endDateTime": "20200831 23:59:59 US/Eastern",
        "durationStr": "5 D",
        "barSizeSetting": "1 day",
        "whatToShow": "TRADES",
        "useRTH": True,
        "formatDate": 1,
        "timeout": 0,  # no request-level timeout returning an empty list: RequestTimeout raises instead
    }
    assert ib.RequestTimeout == 2.5  # bounds the whole connect and every blocking request
    assert ib.disconnects == 1


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2020-08-31", "2020-08-31", "1 D"),
        ("2020-01-01", "2020-12-30", "365 D"),
        ("2020-01-01", "2020-12-31", "2 Y"),  # 366 days (leap year) no longer fit in '365 D'
        ("2016-01-04", "2025-11-28", "10 Y"),
    ],
)
def test_duration_covers_start_to_end(start, end, expected):
    assert duration_str(D(start), D(end)) == expected


def test_end_date_time_is_the_end_of_the_new_york_day():
    assert end_date_time(D("2024-06-10")) == "20240610 23:59:59 US/Eastern"


def test_long_ranges_ask_for_years_and_keep_only_the_window():
    ib = FakeIB()
    batch = make_source(ib).fetch(["AAPL"], D("2019-08-28"), D("2020-08-28"))
    assert ib.requests[0][1]["durationStr"] == "2 Y"
    assert list(batch.bars["date"]) == ["2020-08-26", "2020-08-27", "2020-08-28"]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 4002)"),
        asyncio.TimeoutError(),
        OSError(113, "No route to host"),
    ],
    ids=["refused", "timeout", "no-route"],
)
def test_unreachable_gateway_makes_the_source_unavailable(error):
    ib = FakeIB(connect_error=error)
    with pytest.raises(SourceUnavailable, match=r"127\.0\.0\.1:4002") as raised:
        make_source(ib).fetch(["AAPL"], D("2020-08-27"), D("2020-08-31"))
    assert type(error).__name__ in str(raised.value)
    assert ib.requests == [] and ib.disconnects == 1


def test_unknown_symbol_and_empty_history_go_to_failures():
    ib = FakeIB(bars={"AAPL": AAPL_BARS, "NEWCO": []})
    batch = make_source(ib).fetch(["ZZZZ", "AAPL", "NEWCO"], D("2020-08-27"), D("2020-08-31"))
    assert set(batch.failures) == {"ZZZZ", "NEWCO"}
    assert "cannot qualify ZZZZ" in batch.failures["ZZZZ"]
    assert "no TRADES daily bars for NEWCO" in batch.failures["NEWCO"]
    assert set(batch.bars["symbol"]) == {"AAPL"}
    assert [c.symbol for c, _ in ib.requests] == ["AAPL", "NEWCO"]  # no request for the unknown symbol


def test_bars_outside_the_window_only_is_a_failure():
    batch = make_source(FakeIB()).fetch(["MSFT"], D("2020-09-01"), D("2020-09-04"))
    assert batch.bars.empty and list(batch.bars.columns) == BAR_COLUMNS
    assert "MSFT" in batch.failures


def test_share_class_symbols_use_ibs_spelling():
    ib = FakeIB(bars={"BRK B": MSFT_BARS})
    batch = make_source(ib).fetch(["BRK-B"], D("2020-08-28"), D("2020-08-28"))
    assert ib.requests[0][0].symbol == "BRK B"
    assert list(batch.bars["symbol"]) == ["BRK-B"]


def test_connection_lost_mid_run_keeps_served_bars_and_fails_the_rest():
    ib = FakeIB(
        bars={"AAPL": AAPL_BARS, "MSFT": MSFT_BARS, "NVDA": []},
        request_errors={"MSFT": ConnectionResetError(104, "Connection reset by peer")},
    )
    batch = make_source(ib).fetch(["AAPL", "MSFT", "NVDA"], D("2020-08-27"), D("2020-08-31"))
    assert set(batch.bars["symbol"]) == {"AAPL"}
    assert set(batch.failures) == {"MSFT", "NVDA"}
    assert all("connection lost" in reason for reason in batch.failures.values())
    assert ib.disconnects == 1


def test_disconnects_even_when_a_request_blows_up():
    ib = FakeIB(request_errors={"AAPL": RuntimeError("unexpected")})
    with pytest.raises(RuntimeError):
        make_source(ib).fetch(["AAPL"], D("2020-08-27"), D("2020-08-31"))
    assert ib.disconnects == 1


def test_actions_come_from_the_actions_source_for_served_symbols_only():
    actions = ActionsSource()
    batch = make_source(FakeIB(), actions_source=actions).fetch(["AAPL", "ZZZZ"], D("2020-08-27"), D("2020-08-31"))
    assert actions.calls == [["AAPL"]]
    assert batch.splits.to_dict("records") == [{"symbol": "AAPL", "date": "2020-08-31", "ratio": 4.0}]
    assert len(batch.bars) == 3  # IB's bars, not the actions source's


def test_actions_source_down_keeps_the_bars(caplog):
    with caplog.at_level(logging.WARNING, logger="turbomode_dagster.sources.ibkr"):
        batch = make_source(FakeIB(), actions_source=ActionsSource(down=True)).fetch(
            ["AAPL"], D("2020-08-27"), D("2020-08-31")
        )
    assert len(batch.bars) == 3 and batch.failures == {}
    assert batch.splits.empty
    assert "yahoo unavailable" in caplog.text


def test_pacer_allows_sixty_requests_per_ten_minutes():
    clock = FakeClock()
    pacer = HistoricalDataPacer(clock=clock, sleep=clock.sleep)
    for i in range(60):
        pacer.wait(f"S{i}", ("S", i))
    assert clock.sleeps == []
    pacer.wait("S60", ("S", 60))
    assert clock.now == pytest.approx(600.0)  # the 61st waits until the first leaves the window


def test_pacer_spaces_identical_requests_by_fifteen_seconds():
    clock = FakeClock()
    pacer = HistoricalDataPacer(clock=clock, sleep=clock.sleep)
    pacer.wait("AAPL", ("AAPL", "5 D"))
    clock.now = 4.0
    pacer.wait("AAPL", ("AAPL", "10 D"))  # same contract, different request: no wait
    assert clock.now == 4.0
    pacer.wait("AAPL", ("AAPL", "5 D"))
    assert clock.now == pytest.approx(15.0)


def test_pacer_keeps_under_six_requests_per_contract_in_two_seconds():
    clock = FakeClock()
    pacer = HistoricalDataPacer(clock=clock, sleep=clock.sleep)
    for i in range(5):
        pacer.wait("AAPL", ("AAPL", i))
        pacer.wait("MSFT", ("MSFT", i))  # other contracts do not count
    assert clock.sleeps == []
    pacer.wait("AAPL", ("AAPL", 5))
    assert clock.now == pytest.approx(2.0)


def test_source_paces_a_repeated_fetch_through_its_pacer():
    clock = FakeClock()
    source = make_source(FakeIB(), clock)
    source.fetch(["AAPL"], D("2020-08-27"), D("2020-08-31"))
    source.fetch(["AAPL"], D("2020-08-27"), D("2020-08-31"))
    assert clock.sleeps == [pytest.approx(15.0)]


def test_neither_library_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ib_async", None)
    monkeypatch.setitem(sys.modules, "ib_insync", None)
    with pytest.raises(SourceUnavailable, match=r"pip install turbomode_dagster\[ibkr\]"):
        load_ib_api()
    with pytest.raises(SourceUnavailable, match="ib_insync"):
        IBKRSource().fetch(["AAPL"], D("2020-08-27"), D("2020-08-31"))


def test_falls_back_to_ib_insync_without_ib_async(monkeypatch):
    ib_insync = pytest.importorskip("ib_insync")
    monkeypatch.setitem(sys.modules, "ib_async", None)
    assert load_ib_api() is ib_insync


def test_real_library_refused_connection_fails_fast():
    pytest.importorskip("ib_insync")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    began = time.monotonic()
    with pytest.raises(SourceUnavailable, match=f"127.0.0.1:{port}"):
        IBKRSource(port=port, timeout_seconds=2.0).fetch(["AAPL"], D("2020-08-27"), D("2020-08-31"))
    assert time.monotonic() - began < 2.0
