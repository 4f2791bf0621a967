"""YahooSource on recorded yfinance frames: traded basis at splits, actions, fundamentals, failure modes."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import requests
import yfinance as yf
from curl_cffi import requests as curl_requests
from curl_cffi.requests.exceptions import DNSError
from curl_cffi.requests.exceptions import HTTPError as CurlHTTPError
from curl_cffi.requests.exceptions import Timeout as CurlTimeout
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTzMissingError

from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    FUNDAMENTAL_COLUMNS,
    METADATA_COLUMNS,
    SPLIT_COLUMNS,
    SourceUnavailable,
)
from turbomode_dagster.sources.yahoo import BoundedSession, YahooSource, YFinanceClient, available_date

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yahoo"
HISTORY_FILES = {
    "AAPL": "AAPL_2020-07-31_2020-09-11.csv",
    "NVDA": "NVDA_2024-05-28_2024-06-21.csv",
}
D = dt.date.fromisoformat


def load_history(symbol: str) -> pd.DataFrame:
    """A recorded yfinance history frame, rebuilt exactly: tz-aware 'Date' index and yfinance's dtypes."""
    frame = pd.read_csv(FIXTURES / HISTORY_FILES[symbol], comment="#", index_col="Date")
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.index, utc=True), name="Date").tz_convert("America/New_York")
    return frame.astype({c: np.int64 if c == "Volume" else np.float64 for c in frame.columns})


def load_info(symbol: str) -> dict:
    """A recorded `Ticker.info` dict."""
    return json.loads((FIXTURES / f"{symbol}_info.json").read_text())


def load_quarterly(symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recorded quarterly income statement and balance sheet in yfinance's shape (rows x period ends)."""
    raw = json.loads((FIXTURES / f"{symbol}_quarterly.json").read_text())

    def statement(by_period: dict) -> pd.DataFrame:
        frame = pd.DataFrame(by_period).astype(float)
        frame.columns = pd.to_datetime(frame.columns)
        return frame[sorted(frame.columns, reverse=True)]

    return statement(raw["income"]), statement(raw["balance"])


class RecordedYahoo:
    """A stand-in for yfinance serving the fixtures; records each history call's arguments."""

    def __init__(self, errors: dict[str, Exception] | None = None, empty: tuple[str, ...] = ()):
        self.errors = errors or {}
        self.empty = empty
        self.calls: list[tuple[str, dt.date, dt.date | None]] = []

    def history(self, symbol: str, start: dt.date, end: dt.date | None) -> pd.DataFrame:
        self.calls.append((symbol, start, end))
        if symbol in self.errors:
            raise self.errors[symbol]
        if symbol in self.empty:
            return pd.DataFrame(
                columns=["Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits"]
            )
        return load_history(symbol)

    def info(self, symbol: str) -> dict:
        return load_info(symbol) if symbol == "AAPL" else {}

    def quarterly_financials(self, symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        return load_quarterly(symbol) if symbol == "AAPL" else (pd.DataFrame(), pd.DataFrame())


def source(yahoo: RecordedYahoo) -> YahooSource:
    return YahooSource(yahoo.history, info=yahoo.info, quarterly_financials=yahoo.quarterly_financials)


def closes(bars: pd.DataFrame, symbol: str) -> pd.Series:
    return bars[bars["symbol"] == symbol].set_index("date")["close"]


def test_fixture_loader_rebuilds_yfinance_shape():
    frame = load_history("AAPL")
    assert str(frame.index.dtype) == "datetime64[ns, America/New_York]"
    assert frame.index.name == "Date"
    assert list(frame.columns) == [
        "Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits"
    ]  # fmt: skip
    assert frame["Volume"].dtype == np.int64
    assert frame.loc["2020-08-31", "Stock Splits"].item() == 4.0


def test_aapl_prices_are_converted_back_to_traded():
    batch = source(RecordedYahoo()).fetch(["AAPL"], D("2020-07-31"), D("2020-09-11"))
    assert list(batch.bars.columns) == BAR_COLUMNS
    assert batch.failures == {}
    close = closes(batch.bars, "AAPL")
    assert close["2020-08-28"] == 499.23 and close["2020-08-31"] == 129.04
    assert close["2020-08-28"] / close["2020-08-31"] == pytest.approx(4, rel=0.05)
    day = batch.bars.set_index("date").loc["2020-08-28"]
    assert (day["open"], day["high"], day["low"], day["volume"]) == (504.05, 505.77, 498.31, 46907500)
    assert batch.bars["volume"].dtype == np.int64
    assert batch.bars.set_index("date").loc["2020-08-31", "volume"] == 225702700


def test_aapl_actions_on_traded_basis():
    batch = source(RecordedYahoo()).fetch(["AAPL"], D("2020-07-31"), D("2020-09-11"))
    assert batch.splits.to_dict("records") == [{"symbol": "AAPL", "date": "2020-08-31", "ratio": 4.0}]
    assert batch.dividends.to_dict("records") == [{"symbol": "AAPL", "ex_date": "2020-08-07", "amount": 0.82}]
    assert list(batch.splits.columns) == SPLIT_COLUMNS
    assert list(batch.dividends.columns) == DIVIDEND_COLUMNS


def test_window_before_a_split_still_sees_it():
    yahoo = RecordedYahoo()
    batch = source(yahoo).fetch(["AAPL"], D("2020-08-24"), D("2020-08-28"))
    assert yahoo.calls == [("AAPL", D("2020-08-24"), None)]  # through the latest bar, not just to `end`
    assert closes(batch.bars, "AAPL").to_dict() == {
        "2020-08-24": 503.43, "2020-08-25": 499.30, "2020-08-26": 506.09,
        "2020-08-27": 500.04, "2020-08-28": 499.23,
    }  # fmt: skip
    assert batch.splits.empty  # the split is after the window: used for the basis, not returned


def test_nvda_ten_for_one_and_a_dividend_after_the_split():
    batch = source(RecordedYahoo()).fetch(["NVDA"], D("2024-05-28"), D("2024-06-21"))
    close = closes(batch.bars, "NVDA")
    assert close["2024-06-07"] == 1208.88 and close["2024-06-10"] == 121.79
    assert batch.bars.set_index("date").loc["2024-06-07", "volume"] == 41238600
    assert batch.splits.to_dict("records") == [{"symbol": "NVDA", "date": "2024-06-10", "ratio": 10.0}]
    assert batch.dividends.to_dict("records") == [{"symbol": "NVDA", "ex_date": "2024-06-11", "amount": 0.01}]
    assert "2024-06-19" not in close.index  # Juneteenth


def test_stitch_with_ibkr_traded_series_jumps_only_by_the_split_ratio():
    # As IBKR would serve them (TRADES, as traded) for the days before Yahoo takes over.
    ibkr = pd.Series({"2020-08-24": 503.43, "2020-08-25": 499.30, "2020-08-26": 506.09, "2020-08-27": 500.04})
    batch = source(RecordedYahoo()).fetch(["AAPL"], D("2020-08-28"), D("2020-09-04"))
    stitched = pd.concat([ibkr, closes(batch.bars, "AAPL")]).sort_index()
    assert stitched.index.is_unique

    moves = stitched / stitched.shift(1)
    assert moves["2020-08-28"] == pytest.approx(1, abs=0.01)  # the seam: no jump
    assert moves["2020-08-31"] == pytest.approx(0.25, rel=0.05)  # the split: exactly 1/ratio, plus the day
    assert moves.drop("2020-08-31").dropna().sub(1).abs().max() < 0.10  # 2020-09-03 fell 8%

    adjusted = stitched.where(stitched.index >= "2020-08-31", stitched / 4)
    assert adjusted.pct_change().abs().max() < 0.10
    assert adjusted.pct_change()["2020-08-31"] == pytest.approx(129.04 / (499.23 / 4) - 1)
    yahoo_adjusted = load_history("AAPL")["Close"]
    yahoo_adjusted.index = yahoo_adjusted.index.strftime("%Y-%m-%d")
    assert np.allclose(adjusted, yahoo_adjusted[adjusted.index], rtol=1e-6)


def test_metadata_and_fundamentals():
    batch = source(RecordedYahoo()).fetch(["AAPL"], D("2020-08-03"), D("2020-08-07"))
    assert batch.metadata.to_dict("records") == [
        {
            "symbol": "AAPL",
            "name": "Apple Inc.",
            "sector": "Technology",
            "industry": "Consumer Electronics",
            "exchange": "NMS",
            "currency": "USD",
        }
    ]
    assert list(batch.metadata.columns) == METADATA_COLUMNS
    fundamentals = batch.fundamentals.set_index("period_end")
    assert list(batch.fundamentals.columns) == FUNDAMENTAL_COLUMNS
    assert list(fundamentals.index) == ["2019-09-30", "2019-12-31", "2020-03-31", "2020-06-30"]
    june = fundamentals.loc["2020-06-30"]
    assert june["available_date"] == "2020-08-14"  # 45 days later, a Friday session
    assert (june["revenue"], june["net_income"], june["eps"]) == (59685e6, 11253e6, 2.58)
    assert june["shares_outstanding"] == 4283939000
    assert june["book_value_per_share"] == pytest.approx(72282e6 / 4283939000)


@pytest.mark.parametrize(
    ("period_end", "expected"),
    [
        ("2020-06-30", "2020-08-14"),  # lands on a session
        ("2022-06-30", "2022-08-15"),  # lands on Sunday 2022-08-14
        ("2023-10-19", "2023-12-04"),  # lands on Sunday 2023-12-03
        ("2024-01-05", "2024-02-20"),  # lands on Presidents' Day 2024-02-19
    ],
)
def test_available_date_is_45_days_later_rolled_to_a_session(period_end, expected):
    assert available_date(D(period_end)) == expected


def test_missing_info_and_statements_do_not_cost_the_bars():
    def broken(symbol):
        raise requests.ConnectionError("quoteSummary unreachable")

    yahoo = RecordedYahoo()
    batch = YahooSource(yahoo.history, info=broken, quarterly_financials=broken).fetch(
        ["AAPL"], D("2020-08-03"), D("2020-08-07")
    )
    assert len(batch.bars) == 5 and batch.failures == {}
    assert batch.metadata.empty and batch.fundamentals.empty
    assert list(batch.metadata.columns) == METADATA_COLUMNS


def test_history_only_injection_stays_offline():
    batch = YahooSource(RecordedYahoo().history).fetch(["AAPL"], D("2020-08-03"), D("2020-08-07"))
    assert len(batch.bars) == 5
    assert batch.metadata.empty and batch.fundamentals.empty


def test_empty_or_delisted_symbols_go_to_failures_and_others_are_served():
    yahoo = RecordedYahoo(
        empty=("ZZZZ",),
        errors={
            "GONE": YFPricesMissingError("GONE", "(1d 2020-08-03 -> None)"),
            "NOTZ": YFTzMissingError("NOTZ"),
        },
    )
    batch = source(yahoo).fetch(["ZZZZ", "AAPL", "GONE", "NOTZ", "NVDA"], D("2020-08-03"), D("2020-08-07"))
    assert set(batch.failures) == {"ZZZZ", "GONE", "NOTZ", "NVDA"}  # NVDA: nothing in a 2020 window
    assert "ZZZZ" in batch.failures["ZZZZ"] and "no bars" in batch.failures["ZZZZ"]
    assert "possibly delisted" in batch.failures["GONE"]
    assert "no timezone" in batch.failures["NOTZ"]
    assert set(batch.bars["symbol"]) == {"AAPL"}
    assert set(batch.metadata["symbol"]) == {"AAPL"}


def http_error(status: int, kind=requests.HTTPError) -> Exception:
    """An HTTPError carrying its response, as requests and curl_cffi raise it."""
    response = requests.Response()
    response.status_code = status
    return kind(f"HTTP Error {status}", response=response)


def test_http_404_is_an_unknown_symbol_not_an_outage():
    yahoo = RecordedYahoo(errors={"OLDCO": http_error(404), "GONE": http_error(404, CurlHTTPError)})
    batch = source(yahoo).fetch(["OLDCO", "GONE", "AAPL"], D("2020-08-03"), D("2020-08-07"))
    assert set(batch.failures) == {"OLDCO", "GONE"}
    assert "does not know OLDCO" in batch.failures["OLDCO"]
    assert set(batch.bars["symbol"]) == {"AAPL"}


@pytest.mark.parametrize(
    "error",
    [
        YFRateLimitError(),
        requests.ConnectionError("Failed to establish a new connection: [Errno 111] Connection refused"),
        requests.Timeout("Read timed out. (read timeout=10)"),
        DNSError("Could not resolve host: query2.finance.yahoo.com", 6),
        CurlTimeout("Operation timed out after 10001 milliseconds", 28),
        json.JSONDecodeError("Expecting value", "<html>", 0),
        http_error(401),
        http_error(503, CurlHTTPError),
    ],
    ids=["rate-limit", "refused", "requests-timeout", "dns", "curl-timeout", "html-page", "401", "503"],
)
def test_network_failures_make_the_whole_source_unavailable(error):
    with pytest.raises(SourceUnavailable, match=type(error).__name__):
        source(RecordedYahoo(errors={"MSFT": error})).fetch(["AAPL", "MSFT"], D("2020-08-03"), D("2020-08-07"))


class FakeTicker:
    """Stands in for yf.Ticker: records history's keywords and the hide_exceptions setting in force."""

    seen: ClassVar[list[tuple[str, dict, bool]]] = []
    sessions: ClassVar[list[object]] = []

    def __init__(self, symbol: str, session: object = None):
        self.symbol = symbol
        FakeTicker.sessions.append(session)

    def history(self, **kwargs) -> pd.DataFrame:
        FakeTicker.seen.append((self.symbol, kwargs, yf.config.debug.hide_exceptions))
        return load_history("AAPL")


def test_live_client_asks_yfinance_for_unadjusted_actions_and_raised_errors(monkeypatch):
    monkeypatch.setattr(yf, "Ticker", FakeTicker)
    FakeTicker.seen.clear()
    FakeTicker.sessions.clear()
    before = yf.config.debug.hide_exceptions
    client = YFinanceClient(timeout_seconds=3.5)
    client.history("AAPL", D("2020-08-03"), None)
    client.history("AAPL", D("2020-08-03"), D("2020-08-07"))
    assert yf.config.debug.hide_exceptions == before
    (_, first, hidden), (_, second, _) = FakeTicker.seen
    assert not hidden  # errors raised while yfinance runs, so an outage is not read as "no data"
    assert first == {
        "start": "2020-08-03",
        "end": None,
        "interval": "1d",
        "auto_adjust": False,
        "actions": True,
        "timeout": 3.5,
    }
    assert second["end"] == "2020-08-08"  # yfinance's end is exclusive
    # every request goes through the session that caps yfinance's own (30 s cookie/crumb) timeouts
    assert all(isinstance(s, BoundedSession) and s.timeout_seconds == 3.5 for s in FakeTicker.sessions)
    assert len(FakeTicker.sessions) == 2


@pytest.mark.parametrize(
    ("asked", "sent"),
    [(30, 0.5), (0.2, 0.2), (None, 0.5), ((30, 0.1), (0.5, 0.1))],
    ids=["yfinance's 30 s cookie timeout", "shorter kept", "none", "connect/read pair"],
)
def test_bounded_session_caps_every_request_timeout(monkeypatch, asked, sent):
    sent_timeouts = []
    monkeypatch.setattr(
        curl_requests.Session, "request", lambda self, method, url, **kw: sent_timeouts.append(kw["timeout"])
    )
    BoundedSession(0.5).get("https://fc.yahoo.com", timeout=asked)
    assert sent_timeouts == [sent]


def test_a_yfinance_call_past_its_timeout_is_abandoned_as_an_outage(monkeypatch):
    class HangingTicker(FakeTicker):
        def history(self, **kwargs):
            time.sleep(2)

    monkeypatch.setattr(yf, "Ticker", HangingTicker)
    began = time.monotonic()
    with pytest.raises(SourceUnavailable, match=r"DeadlineExceeded: Yahoo history of AAPL not done within 0.2 s"):
        YahooSource(timeout_seconds=0.2).fetch(["AAPL"], D("2020-08-03"), D("2020-08-07"))
    assert time.monotonic() - began < 1.0
