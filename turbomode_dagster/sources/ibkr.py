"""Interactive Brokers (IB Gateway / TWS) daily bars through ib_async or ib_insync.

TRADES daily bars over regular trading hours are unadjusted: prices as traded, what the Master DB
stores. The connection is read-only and always closed again. Requests are paced inside IB's
historical-data limits (`HistoricalDataPacer`). IB serves no corporate actions or fundamentals here,
so splits, dividends, fundamentals and metadata for the symbols IB served come from `actions_source`
(Yahoo in production); if that source is down the bars are still returned and a warning is logged.

Failures. A refused or timed-out connection raises `SourceUnavailable` within `timeout_seconds`; a
symbol IB cannot qualify or has no bars for goes to `failures`, and so does every symbol left when
the connection drops mid-run, so the fallback chain can serve them elsewhere.

Time. `timeout_seconds` bounds the whole connect (the API handshake and ib_insync's start-up
requests for positions, account updates and executions, which it otherwise waits for one after the
other) and every request after it (the client's `RequestTimeout`). A gateway that answers the
handshake and then goes silent raises `SourceUnavailable` after one timeout if it has served
nothing yet; once it has served some symbols, a request timeout sends the rest to `failures`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Protocol

import pandas as pd

from turbomode_dagster.calendar import as_date
from turbomode_dagster.sources._frames import bars_frame, concat
from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    MarketDataBatch,
    MarketDataSource,
    SourceUnavailable,
)

logger = logging.getLogger(__name__)

IB_MODULES = ("ib_async", "ib_insync")
MAX_DAYS_DURATION = 365
# Refused, reset, unreachable, "Not connected" (all OSError); asyncio.TimeoutError is one only from 3.11.
_CONNECTION_ERRORS = (OSError, asyncio.TimeoutError)


class IBApi(Protocol):
    """What this source uses of the ib_async / ib_insync module: the `IB` client and `Stock` contracts."""

    IB: Callable[[], Any]
    Stock: Callable[[str, str, str], Any]


def load_ib_api() -> IBApi:
    """The ib_async module if installed, else ib_insync; `SourceUnavailable` naming the extra if neither."""
    for module in IB_MODULES:
        with contextlib.suppress(ImportError):
            return importlib.import_module(module)
    raise SourceUnavailable("neither ib_async nor ib_insync is installed: pip install turbomode_dagster[ibkr]")


class HistoricalDataPacer:
    """Spaces historical-data requests inside IB's pacing limits, waiting as long as needed.

    IB's limits: no more than 60 requests in any 10 minutes, no identical request within 15 seconds,
    and fewer than six requests for one contract (and exchange and tick type) within 2 seconds.
    `clock` and `sleep` are injectable so tests run instantly.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_requests: int = 60,
        window_seconds: float = 600.0,
        identical_gap_seconds: float = 15.0,
        per_contract_max: int = 5,
        per_contract_seconds: float = 2.0,
    ):
        self.clock = clock
        self.sleep = sleep
        self.window_seconds = window_seconds
        self.identical_gap_seconds = identical_gap_seconds
        self.per_contract_seconds = per_contract_seconds
        self._recent: deque[float] = deque(maxlen=max_requests)
        self._per_contract_max = per_contract_max
        self._by_contract: dict[Hashable, deque[float]] = {}
        self._last_identical: dict[Hashable, float] = {}

    def wait(self, contract: Hashable, request: Hashable) -> None:
        """Block until a request (`request` its full parameters) for `contract` is allowed, then count it."""
        while (delay := self._ready_at(contract, request) - self.clock()) > 0:
            self.sleep(delay)
        now = self.clock()
        self._recent.append(now)
        self._by_contract.setdefault(contract, deque(maxlen=self._per_contract_max)).append(now)
        self._last_identical = {
            key: t for key, t in self._last_identical.items() if now - t < self.identical_gap_seconds
        }
        self._last_identical[request] = now

    def _ready_at(self, contract: Hashable, request: Hashable) -> float:
        """The earliest clock time at which the request breaks none of the limits."""
        ready = -math.inf
        if len(self._recent) == self._recent.maxlen:
            ready = max(ready, self._recent[0] + self.window_seconds)
        same_contract = self._by_contract.get(contract)
        if same_contract is not None and len(same_contract) == same_contract.maxlen:
            ready = max(ready, same_contract[0] + self.per_contract_seconds)
        if request in self._last_identical:
            ready = max(ready, self._last_identical[request] + self.identical_gap_seconds)
        return ready


def duration_str(start: dt.date, end: dt.date) -> str:
    """IB's durationStr reaching back from `end` to `start`: 'N D' up to 365 days, else whole years."""
    days = (end - start).days + 1
    if days <= MAX_DAYS_DURATION:
        return f"{days} D"
    return f"{math.ceil(days / MAX_DAYS_DURATION)} Y"


def end_date_time(end: dt.date) -> str:
    """IB's endDateTime for the close of `end`'s day in New York."""
    return f"{end:%Y%m%d} 23:59:59 US/Eastern"


def ib_symbol(symbol: str) -> str:
    """IB's spelling of a share-class symbol: BRK-B (Yahoo) is 'BRK B' at IB."""
    return symbol.replace("-", " ")


class IBKRSource:
    """Daily bars as traded from IB Gateway / TWS, with actions and fundamentals from `actions_source`.

    `ib_factory` returns the IB API (default: `load_ib_api`, the ib_async or ib_insync module);
    tests pass a stand-in with fake `IB` and `Stock`. `pacing` defaults to a real-time pacer.
    """

    name = "ibkr"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4002,
        client_id: int = 17,
        timeout_seconds: float = 10.0,
        ib_factory: Callable[[], IBApi] | None = None,
        actions_source: MarketDataSource | None = None,
        pacing: HistoricalDataPacer | None = None,
    ):
        self.host = host
        self.port = port
        self.client_id = client_id
        self.timeout_seconds = timeout_seconds
        self.actions_source = actions_source
        self._ib_factory = ib_factory or load_ib_api
        self._pacer = pacing or HistoricalDataPacer()

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        """TRADES daily bars for `symbols` from `start` to `end`, plus `actions_source`'s actions for them."""
        api = self._ib_factory()
        ib = api.IB()
        ib.RequestTimeout = self.timeout_seconds  # bounds connect as a whole and every blocking request
        batch = MarketDataBatch()
        try:
            try:
                ib.connect(
                    self.host,
                    self.port,
                    clientId=self.client_id,
                    timeout=self.timeout_seconds,
                    readonly=True,
                )
            except _CONNECTION_ERRORS as exc:
                raise SourceUnavailable(
                    f"cannot connect to IB Gateway/TWS at {self.host}:{self.port} (client id "
                    f"{self.client_id}, timeout {self.timeout_seconds}s): {type(exc).__name__}: {exc}"
                ) from exc
            batch.bars, lost = self._bars(ib, api, symbols, start, end, batch.failures)
            if batch.bars.empty and isinstance(lost, asyncio.TimeoutError):
                raise SourceUnavailable(
                    f"IB Gateway/TWS at {self.host}:{self.port} accepted the connection but answered no "
                    f"request within {self.timeout_seconds}s"
                ) from lost
        finally:
            ib.disconnect()
        served = list(dict.fromkeys(batch.bars["symbol"]))
        if served and self.actions_source is not None:
            self._add_actions(batch, served, start, end)
        return batch

    def _bars(
        self, ib: Any, api: IBApi, symbols: list[str], start: dt.date, end: dt.date, failures: dict[str, str]
    ) -> tuple[pd.DataFrame, BaseException | None]:
        """Each symbol's bars in [start, end], and the error that ended the connection early (if one did);
        the reason in `failures` for each symbol IB did not serve."""
        frames = []
        request = {
            "endDateTime": end_date_time(end),
            "durationStr": duration_str(start, end),
            "barSizeSetting": "1 day",
            "whatToShow": "TRADES",
            "useRTH": True,
            "formatDate": 1,
        }
        lost = None
        for position, symbol in enumerate(symbols):
            try:
                contract = api.Stock(ib_symbol(symbol), "SMART", "USD")
                if not ib.qualifyContracts(contract):
                    failures[symbol] = f"IB cannot qualify {symbol} as a USD stock on SMART (unknown or ambiguous)"
                    continue
                self._pacer.wait(symbol, (symbol, *request.values()))
                # timeout=0: no request-level timeout that would return an empty list indistinguishable
                # from "no bars"; RequestTimeout raises instead.
                bars = ib.reqHistoricalData(contract, **request, timeout=0)
            except _CONNECTION_ERRORS as exc:
                lost = exc
                reason = (
                    f"IB request timed out after {self.timeout_seconds}s"
                    if isinstance(exc, asyncio.TimeoutError)
                    else f"IB connection lost: {type(exc).__name__}: {exc}"
                )
                for symbol_left in symbols[position:]:
                    failures[symbol_left] = reason
                break
            rows = [
                (day.isoformat(), b.open, b.high, b.low, b.close, b.volume)
                for b in bars
                if start <= (day := as_date(b.date)) <= end
            ]
            if not rows:
                failures[symbol] = f"IB returned no TRADES daily bars for {symbol} from {start} to {end}"
                continue
            frames.append(bars_frame(symbol, pd.DataFrame(rows, columns=BAR_COLUMNS[1:])))
        return concat(frames, BAR_COLUMNS), lost

    def _add_actions(self, batch: MarketDataBatch, served: list[str], start: dt.date, end: dt.date) -> None:
        """Splits, dividends, fundamentals and metadata from `actions_source`; bars stand if it is down."""
        try:
            actions = self.actions_source.fetch(served, start, end)
        except SourceUnavailable as exc:
            logger.warning(
                "IBKR bars for %d symbols kept without splits/dividends/fundamentals/metadata: %s unavailable: %s",
                len(served),
                self.actions_source.name,
                exc,
            )
            return
        if actions.failures:
            logger.warning("%s had no actions for: %s", self.actions_source.name, actions.failures)
        batch.splits = actions.splits
        batch.dividends = actions.dividends
        batch.fundamentals = actions.fundamentals
        batch.metadata = actions.metadata
