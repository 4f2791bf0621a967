"""Yahoo Finance through yfinance: daily bars turned back into traded prices, with corporate actions,
metadata and quarterly fundamentals.

Basis. With `auto_adjust=False` yfinance's Open/High/Low/Close, Volume and Dividends are adjusted
for every split up to today (not for dividends; only 'Adj Close' is). The Master DB stores prices as
traded, so each bar is multiplied by the product of the ratios of the splits dated after it (its
volume divided by it), and so is each dividend. Because Yahoo also adjusts for splits after the
requested range, the history is always asked for through the latest bar and trimmed to
[start, end] afterwards; a series stitched from IBKR (as traded) and Yahoo then jumps only at a
split, by exactly its ratio.

Fundamentals. Yahoo gives quarter ends but no filing dates, so a quarter counts as published
`PUBLICATION_LAG_DAYS` (45) days after it ends, rolled forward to an NYSE session: the SEC's latest
10-Q deadline, so features never see a number before it was public. Values pass through as Yahoo
reports them; quarters Yahoo no longer serves (it keeps about five) are simply absent.

Failures. A network error, DNS failure, timeout, rate limit or a Yahoo outage raises
`SourceUnavailable`; a symbol with no history ("possibly delisted", or HTTP 404) goes to `failures`. Metadata
and fundamentals are best effort: their failure never costs a symbol its bars.

Time. `timeout_seconds` bounds each yfinance call end to end: every HTTP request goes through a
session that caps its timeout (yfinance asks 30 s for its cookie and crumb requests whatever it is
told), and the whole call runs under a hard deadline of the same length, so a silent Yahoo costs
one timeout, not the ~70 s that yfinance's chain of cookie, crumb, consent and chart requests takes.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import pandas as pd
import yfinance as yf
from curl_cffi import requests as curl_requests
from curl_cffi.requests.session import NOT_SET
from yfinance.exceptions import YFDataException, YFException, YFRateLimitError

from turbomode_dagster.calendar import next_session
from turbomode_dagster.sources._deadline import call_within
from turbomode_dagster.sources._frames import bars_frame, concat
from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    FUNDAMENTAL_COLUMNS,
    METADATA_COLUMNS,
    SPLIT_COLUMNS,
    MarketDataBatch,
    SourceUnavailable,
    empty_frame,
)

logger = logging.getLogger(__name__)

PUBLICATION_LAG_DAYS = 45
DIVIDEND_DECIMALS = 6

HistoryFn = Callable[[str, dt.date, dt.date | None], pd.DataFrame]
InfoFn = Callable[[str], Mapping[str, Any]]
FinancialsFn = Callable[[str], tuple[pd.DataFrame, pd.DataFrame]]

# requests' and curl_cffi's errors (connection, DNS, timeout, TLS) are all OSErrors; YFDataException
# is what yfinance raises for Yahoo's "Will be right back" page, and a non-JSON answer is an outage too.
_UNREACHABLE = (OSError, YFRateLimitError, YFDataException, json.JSONDecodeError)


T = TypeVar("T")

_raising_lock = threading.Lock()
_raising_calls = 0
_hidden_before = False


@contextmanager
def _yfinance_raises() -> Iterator[None]:
    """Make yfinance raise its errors rather than log them and return an empty frame.

    Counted: a call abandoned at its deadline may still be running when the next starts, so the
    setting is restored only when the last overlapping call ends.
    """
    global _raising_calls, _hidden_before
    with _raising_lock:
        if _raising_calls == 0:
            _hidden_before = yf.config.debug.hide_exceptions
            yf.config.debug.hide_exceptions = False
        _raising_calls += 1
    try:
        yield
    finally:
        with _raising_lock:
            _raising_calls -= 1
            if _raising_calls == 0:
                yf.config.debug.hide_exceptions = _hidden_before


def _capped(timeout: Any, cap: float) -> float | tuple[float, float]:
    """`timeout` (a number, a (connect, read) pair, None or unset) with no part above `cap`."""
    if isinstance(timeout, tuple):
        return tuple(min(float(part), cap) if part is not None else cap for part in timeout)  # type: ignore[return-value]
    if timeout is None or timeout is NOT_SET:
        return cap
    return min(float(timeout), cap)


class BoundedSession(curl_requests.Session):
    """The curl_cffi session yfinance would make (Chrome impersonation), every request capped at a timeout.

    yfinance passes its own timeouts (30 s for the cookie and crumb requests); none may exceed ours.
    """

    def __init__(self, timeout_seconds: float):
        super().__init__(impersonate="chrome", timeout=timeout_seconds)
        self.timeout_seconds = timeout_seconds

    def request(self, method: Any, url: str, *args: Any, timeout: Any = NOT_SET, **kwargs: Any) -> Any:
        """curl_cffi's request with the timeout capped at `timeout_seconds`."""
        return super().request(method, url, *args, timeout=_capped(timeout, self.timeout_seconds), **kwargs)


@functools.cache
def bounded_session(timeout_seconds: float) -> BoundedSession:
    """One session per timeout for the process: yfinance keeps its cookie and crumb in one global
    object beside the session it was last given, so clients must not swap sessions under it."""
    return BoundedSession(timeout_seconds)


class YFinanceClient:
    """The live Yahoo client: yfinance calls whose network errors surface instead of reading as 'no data',
    each bounded by `timeout_seconds` end to end (`DeadlineExceeded`, an `OSError`, when it runs over)."""

    def __init__(self, timeout_seconds: float = 10.0):
        self.timeout_seconds = timeout_seconds
        self.session = bounded_session(timeout_seconds)

    def history(self, symbol: str, start: dt.date, end: dt.date | None) -> pd.DataFrame:
        """yfinance's daily history (split-adjusted, with actions) from `start` through `end` (None: latest)."""
        stop = None if end is None else (end + dt.timedelta(days=1)).isoformat()  # yfinance's end is exclusive
        return self._bounded(
            f"Yahoo history of {symbol}",
            lambda: self._ticker(symbol).history(
                start=start.isoformat(),
                end=stop,
                interval="1d",
                auto_adjust=False,
                actions=True,
                timeout=self.timeout_seconds,
            ),
        )

    def info(self, symbol: str) -> Mapping[str, Any]:
        """yfinance's `Ticker.info` dict (longName, sector, industry, exchange, currency, ...)."""
        return self._bounded(f"Yahoo info of {symbol}", lambda: self._ticker(symbol).info)

    def quarterly_financials(self, symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The quarterly income statement and balance sheet: rows named like 'TotalRevenue', columns period ends."""

        def statements() -> tuple[pd.DataFrame, pd.DataFrame]:
            ticker = self._ticker(symbol)
            return ticker.get_income_stmt(freq="quarterly"), ticker.get_balance_sheet(freq="quarterly")

        return self._bounded(f"Yahoo statements of {symbol}", statements)

    def _ticker(self, symbol: str) -> yf.Ticker:
        return yf.Ticker(symbol, session=self.session)

    def _bounded(self, what: str, call: Callable[[], T]) -> T:
        """`call` with yfinance raising its errors, abandoned after `timeout_seconds`."""

        def raising() -> T:
            with _yfinance_raises():
                return call()

        return call_within(self.timeout_seconds, raising, what)


class YahooSource:
    """Bars as traded, splits, dividends, metadata and quarterly fundamentals from Yahoo Finance.

    `history`, `info` and `quarterly_financials` replace the yfinance calls (same shapes as
    `YFinanceClient`'s methods). When `history` is injected, an `info` or `quarterly_financials`
    left out returns nothing rather than going to the network.
    """

    name = "yahoo"

    def __init__(
        self,
        history: HistoryFn | None = None,
        timeout_seconds: float = 10.0,
        *,
        info: InfoFn | None = None,
        quarterly_financials: FinancialsFn | None = None,
    ):
        if history is None:
            client = YFinanceClient(timeout_seconds)
            history = client.history
            info = info or client.info
            quarterly_financials = quarterly_financials or client.quarterly_financials
        self._history = history
        self._info = info or _no_info
        self._financials = quarterly_financials or _no_financials

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        """Everything Yahoo has for `symbols` between `start` and `end`, prices as traded."""
        batch = MarketDataBatch()
        bars, splits, dividends, fundamentals, metadata = [], [], [], [], []
        for symbol in symbols:
            try:
                history = self._history(symbol, start, None)
            except _UNREACHABLE as exc:
                if not _is_not_found(exc):
                    raise SourceUnavailable(
                        f"Yahoo Finance unavailable (fetching {symbol}): {type(exc).__name__}: {exc}"
                    ) from exc
                batch.failures[symbol] = f"Yahoo does not know {symbol}: {exc}"
                continue
            except YFException as exc:
                batch.failures[symbol] = f"Yahoo has no history for {symbol}: {exc}"
                continue
            symbol_bars, symbol_splits, symbol_dividends = to_traded(symbol, history, start, end)
            if symbol_bars.empty:
                batch.failures[symbol] = (
                    f"Yahoo returned no bars for {symbol} from {start} to {end} (possibly delisted)"
                )
                continue
            bars.append(symbol_bars)
            splits.append(symbol_splits)
            dividends.append(symbol_dividends)
            metadata.append(self._metadata(symbol))
            fundamentals.append(self._fundamentals(symbol))
        batch.bars = concat(bars, BAR_COLUMNS)
        batch.splits = concat(splits, SPLIT_COLUMNS)
        batch.dividends = concat(dividends, DIVIDEND_COLUMNS)
        batch.fundamentals = concat(fundamentals, FUNDAMENTAL_COLUMNS)
        batch.metadata = concat(metadata, METADATA_COLUMNS)
        return batch

    def _metadata(self, symbol: str) -> pd.DataFrame:
        """One metadata row from `info`, or none when Yahoo has no info (a warning, never a failure)."""
        try:
            info = self._info(symbol) or {}
        except Exception as exc:  # metadata is optional: no error of its own may cost the bars
            logger.warning("Yahoo info for %s unavailable, no metadata: %s: %s", symbol, type(exc).__name__, exc)
            return empty_frame(METADATA_COLUMNS)
        return metadata_frame(symbol, info)

    def _fundamentals(self, symbol: str) -> pd.DataFrame:
        """Quarterly fundamentals, or none when Yahoo has no statements (a warning, never a failure)."""
        try:
            income, balance = self._financials(symbol)
        except Exception as exc:  # fundamentals are optional: no error of their own may cost the bars
            logger.warning("Yahoo statements for %s unavailable: %s: %s", symbol, type(exc).__name__, exc)
            return empty_frame(FUNDAMENTAL_COLUMNS)
        return fundamentals_frame(symbol, income, balance)


def to_traded(
    symbol: str, history: pd.DataFrame, start: dt.date, end: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Bars, splits and dividends between `start` and `end` from a yfinance history, on the traded basis."""
    if history.empty:
        return empty_frame(BAR_COLUMNS), empty_frame(SPLIT_COLUMNS), empty_frame(DIVIDEND_COLUMNS)
    frame = history.sort_index()
    dates = frame.index.strftime("%Y-%m-%d")
    ratios = frame["Stock Splits"].fillna(0.0).to_numpy()
    # factor[i] = product of the split ratios dated after bar i (reverse cumulative product, excluding i)
    per_bar = ratios.copy()
    per_bar[per_bar <= 0] = 1.0
    factor = pd.Series(per_bar[::-1]).cumprod().shift(1, fill_value=1.0).to_numpy()[::-1]
    in_window = (dates >= start.isoformat()) & (dates <= end.isoformat())
    rows = pd.DataFrame(
        {
            "date": dates,
            "open": frame["Open"].to_numpy() * factor,
            "high": frame["High"].to_numpy() * factor,
            "low": frame["Low"].to_numpy() * factor,
            "close": frame["Close"].to_numpy() * factor,
            "volume": frame["Volume"].to_numpy() / factor,
        }
    )
    bars = bars_frame(symbol, rows[in_window])
    split_rows = in_window & (ratios > 0)
    splits = pd.DataFrame({"symbol": symbol, "date": dates[split_rows], "ratio": ratios[split_rows]})
    cash = frame["Dividends"].fillna(0.0).to_numpy()
    dividend_rows = in_window & (cash > 0)
    dividends = pd.DataFrame(
        {
            "symbol": symbol,
            "ex_date": dates[dividend_rows],
            "amount": (cash[dividend_rows] * factor[dividend_rows]).round(DIVIDEND_DECIMALS),
        }
    )
    return bars, splits, dividends


def metadata_frame(symbol: str, info: Mapping[str, Any]) -> pd.DataFrame:
    """A one-row metadata frame from a yfinance info dict; no row when it names nothing we keep."""
    row = {
        "symbol": symbol,
        "name": info.get("longName") or info.get("shortName"),
        "sector": info.get("sector"),
        "industry": info.get("industry"),
        "exchange": info.get("exchange"),
        "currency": info.get("currency"),
    }
    if all(value is None for key, value in row.items() if key != "symbol"):
        return empty_frame(METADATA_COLUMNS)
    return pd.DataFrame([row], columns=METADATA_COLUMNS)


def fundamentals_frame(symbol: str, income: pd.DataFrame, balance: pd.DataFrame) -> pd.DataFrame:
    """One row per quarter from yfinance's quarterly income statement and balance sheet."""
    rows = []
    for period in sorted(set(income.columns) | set(balance.columns)):
        equity = _item(balance, period, "StockholdersEquity", "CommonStockEquity")
        shares = _item(balance, period, "OrdinarySharesNumber", "ShareIssued")
        values = {
            "revenue": _item(income, period, "TotalRevenue", "OperatingRevenue"),
            "net_income": _item(income, period, "NetIncome", "NetIncomeCommonStockholders"),
            "eps": _item(income, period, "DilutedEPS", "BasicEPS"),
            "book_value_per_share": equity / shares if shares > 0 else math.nan,
            "shares_outstanding": shares,
        }
        if all(math.isnan(v) for v in values.values()):
            continue
        period_end = pd.Timestamp(period).date()
        rows.append(
            {
                "symbol": symbol,
                "period_end": period_end.isoformat(),
                "available_date": available_date(period_end),
                **values,
            }
        )
    if not rows:
        return empty_frame(FUNDAMENTAL_COLUMNS)
    return pd.DataFrame(rows, columns=FUNDAMENTAL_COLUMNS)


def available_date(period_end: dt.date) -> str:
    """The first NYSE session at least `PUBLICATION_LAG_DAYS` after a quarter ends (ISO string)."""
    return next_session(period_end + dt.timedelta(days=PUBLICATION_LAG_DAYS - 1))


def _item(statement: pd.DataFrame, period: Any, *names: str) -> float:
    """The first of `names` the statement has a number for in `period`, else NaN."""
    if period not in statement.columns:
        return math.nan
    for name in names:
        if name in statement.index:
            value = pd.to_numeric(statement.at[name, period], errors="coerce")
            if not pd.isna(value):
                return float(value)
    return math.nan


def _is_not_found(exc: BaseException) -> bool:
    """An HTTP 404 (requests' and curl_cffi's HTTPError carry the response): Yahoo has no such symbol.

    yfinance falls back to the quoteSummary endpoint when a symbol has no timezone, and that answers
    an unknown symbol with 404, raised as an HTTPError - an OSError like a real outage.
    """
    return getattr(getattr(exc, "response", None), "status_code", None) == 404


def _no_info(symbol: str) -> Mapping[str, Any]:
    """No metadata (the default when `history` is injected without `info`)."""
    return {}


def _no_financials(symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """No statements (the default when `history` is injected without `quarterly_financials`)."""
    return pd.DataFrame(), pd.DataFrame()
