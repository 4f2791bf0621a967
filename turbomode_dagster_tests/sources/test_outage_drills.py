"""Source-outage drills against real clients: yfinance's HTTP path rerouted to local servers and
ib_insync against local sockets. Each source must give up within its configured timeout (plus a small
margin), the chain must move on, and over several fetch windows a dead source costs one timeout."""

from __future__ import annotations

import datetime as dt
import importlib.util
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.ingestion.run import ingest_sessions
from turbomode_dagster.sources.base import SourceUnavailable
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.factory import build_chain
from turbomode_dagster.sources.ibkr import IBKRSource
from turbomode_dagster.sources.yahoo import YahooSource
from turbomode_dagster.storage.market_db import MarketDBWriter
from turbomode_dagster_tests.conftest import DAY, HISTORY_START, FakeSource, read_table
from turbomode_dagster_tests.sources.outage_servers import (
    UNRESOLVABLE_HOST,
    closed_port,
    hard_limit,
    rate_limiting_server,
    route_yahoo_to,
    silent_listener,
    stalled_gateway,
    wait_for_abandoned_calls,
)

TIMEOUT = 0.5  # each source's configured timeout in the drills
MARGIN = 0.75  # scheduling slack on a busy 2-core machine; the defects cost 2x to 140x the timeout
LIMIT = 20 * TIMEOUT  # a drill still running by then has failed: stop it instead of hanging
START, END = dt.date(2026, 11, 2), dt.date(2026, 11, 25)
needs_ib = pytest.mark.skipif(
    not any(importlib.util.find_spec(m) for m in ("ib_async", "ib_insync")), reason="no IB client library"
)


@pytest.fixture
def reroute_yahoo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[str]]]:
    """Point yfinance's HTTP requests at a local `host:port`; afterwards, wait for abandoned calls."""
    yield lambda host_port: route_yahoo_to(monkeypatch, host_port)
    wait_for_abandoned_calls()  # before monkeypatch undoes the route: none may reach the real Yahoo


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    """The error `call` raised (None if none) and the seconds it took, under the hard limit."""
    began = time.monotonic()
    with hard_limit(LIMIT):
        try:
            call()
        except SourceUnavailable as exc:
            return exc, time.monotonic() - began
    return None, time.monotonic() - began


def yahoo_fetch() -> None:
    YahooSource(timeout_seconds=TIMEOUT).fetch(["DRILL"], START, END)


def ibkr_fetch(host: str, port: int, timeout: float = TIMEOUT) -> Callable[[], object]:
    return lambda: IBKRSource(host=host, port=port, timeout_seconds=timeout).fetch(["AAPL"], START, END)


# --- Yahoo: the real yfinance request path (cookie, crumb, consent, chart) against local servers ---


def test_yahoo_refused_gives_up_at_once(reroute_yahoo) -> None:
    port = closed_port()
    seen = reroute_yahoo(f"127.0.0.1:{port}")
    error, seconds = timed(yahoo_fetch)
    assert error is not None and f"127.0.0.1:{port}" in str(error), error
    assert seen, "the drill must go through yfinance's HTTP client"
    assert seconds < TIMEOUT + MARGIN


def test_yahoo_dns_failure_gives_up_within_its_timeout(reroute_yahoo) -> None:
    reroute_yahoo(UNRESOLVABLE_HOST)
    error, seconds = timed(yahoo_fetch)
    assert error is not None and "Yahoo Finance unavailable" in str(error), error
    assert seconds < TIMEOUT + MARGIN


def test_yahoo_silent_server_gives_up_within_its_timeout(reroute_yahoo) -> None:
    """The defect: yfinance's cookie and crumb requests wait 30 s each whatever `timeout` says (70 s in all)."""
    with silent_listener() as (port, accepted):
        reroute_yahoo(f"127.0.0.1:{port}")
        error, seconds = timed(yahoo_fetch)
        assert accepted, "the drill must reach the silent listener"
    assert error is not None and "Yahoo Finance unavailable" in str(error), error
    assert TIMEOUT * 0.9 <= seconds < TIMEOUT + MARGIN


def test_yahoo_rate_limit_is_an_outage_within_its_timeout(reroute_yahoo) -> None:
    with rate_limiting_server() as server:
        reroute_yahoo(f"127.0.0.1:{server.server_address[1]}")
        error, seconds = timed(yahoo_fetch)
        assert server.hits > 0
    assert error is not None and "YFRateLimitError" in str(error), error
    assert seconds < TIMEOUT + MARGIN


# --- IBKR: the real ib_insync client against local sockets ---


@needs_ib
def test_ibkr_refused_gives_up_at_once() -> None:
    port = closed_port()
    error, seconds = timed(ibkr_fetch("127.0.0.1", port))
    assert error is not None and "ConnectionRefusedError" in str(error), error
    assert seconds < TIMEOUT + MARGIN


@needs_ib
def test_ibkr_dns_failure_gives_up_within_its_timeout() -> None:
    error, seconds = timed(ibkr_fetch(UNRESOLVABLE_HOST, 4002))
    assert error is not None and UNRESOLVABLE_HOST in str(error), error
    assert seconds < TIMEOUT + MARGIN


@needs_ib
def test_ibkr_silent_listener_gives_up_within_its_timeout() -> None:
    with silent_listener() as (port, accepted):
        error, seconds = timed(ibkr_fetch("127.0.0.1", port))
        assert len(accepted) == 1
    assert error is not None and "TimeoutError" in str(error), error
    assert TIMEOUT * 0.9 <= seconds < TIMEOUT + MARGIN


@needs_ib
def test_ibkr_gateway_that_stops_answering_after_connect_gives_up_within_its_timeout() -> None:
    """Connected, then silent: before the fix the contract request waited forever (no RequestTimeout)."""
    with stalled_gateway() as (port, ignored):
        error, seconds = timed(ibkr_fetch("127.0.0.1", port))
        assert ignored, "the client must have got past connect and sent a data request"
    assert error is not None and "answered no request" in str(error), error
    assert TIMEOUT * 0.9 <= seconds < TIMEOUT + MARGIN


@needs_ib
def test_ibkr_connect_with_unanswered_start_up_requests_gives_up_within_its_timeout() -> None:
    """Handshake done, then silence: ib_insync's connect waited for its start-up requests one timeout
    after the other (2x the timeout) before the fix. A 1 s timeout keeps that apart from the margin."""
    with stalled_gateway(answer_sync=False) as (port, ignored):
        error, seconds = timed(ibkr_fetch("127.0.0.1", port, timeout=1.0))
        assert ignored, "the client must have completed the handshake and sent its start-up requests"
    assert error is not None and "cannot connect" in str(error), error
    assert 0.9 <= seconds < 1.0 + MARGIN


# --- The chain over several fetch windows ---


@needs_ib
def test_chain_moves_on_from_each_dead_source_within_its_timeout(reroute_yahoo) -> None:
    with silent_listener() as (ib_port, _), rate_limiting_server() as yahoo:
        reroute_yahoo(f"127.0.0.1:{yahoo.server_address[1]}")
        ibkr = IBKRSource(port=ib_port, timeout_seconds=TIMEOUT)
        backup = FakeSource("backup")
        backup.fetch(["AAPL"], START, END)  # warm the calendar, so the timing is the outages'
        chain = SourceChain([ibkr, YahooSource(timeout_seconds=TIMEOUT), backup])
        began = time.monotonic()
        with hard_limit(LIMIT):
            result = chain.fetch(["AAPL", "MSFT"], START, END)
        seconds = time.monotonic() - began
    assert result.failures == {} and set(result.bars["source"]) == {"backup"}
    assert set(result.unavailable) == {"ibkr", "yahoo"}
    assert seconds < 2 * TIMEOUT + 2 * MARGIN


@needs_ib
def test_both_sources_silent_over_four_windows_cost_one_timeout_each(
    reroute_yahoo, make_config, home: Path, db_path: Path
) -> None:
    """The drill of the issue: IBKR and Yahoo both silent, an ingestion run with several fetch windows
    (231 s before the fix at 10 s timeouts, with four). Each dead source now costs its timeout once per run.
    Now a night fetches two windows: the three stored symbols' session, and the new AMZN's history."""
    symbols = ["AAPL", "MSFT", "NVDA", "AMZN"]
    writer = MarketDBWriter(db_path)
    try:
        for symbol, stored_until in [("AAPL", "2026-11-20"), ("MSFT", "2026-11-23"), ("NVDA", "2026-11-24")]:
            ingest_sessions(writer, SourceChain([FakeSource("sample")]), [symbol], START, stored_until)
        with silent_listener() as (ib_port, ib_connections), silent_listener() as (yahoo_port, _):
            reroute_yahoo(f"127.0.0.1:{yahoo_port}")
            cfg = load_settings(
                make_config(
                    {
                        "universe.symbols": symbols,
                        "history.start_date": HISTORY_START,
                        "sources.order": ["ibkr", "yahoo", "sample"],
                        "sources.ibkr.host": "127.0.0.1",
                        "sources.ibkr.port": ib_port,
                        "sources.ibkr.timeout_seconds": TIMEOUT,
                        "sources.yahoo.timeout_seconds": TIMEOUT,
                    }
                )
            )
            chain = build_chain(cfg, home)
            began = time.monotonic()
            with hard_limit(LIMIT):
                report = ingest_sessions(writer, chain, symbols, START, DAY, run_id="drill")
            seconds = time.monotonic() - began
            assert len(ib_connections) == 1, "IB is dialled once per run, not once per window"
    finally:
        writer.close()
    windows = read_table(db_path, "daily_bars").groupby("symbol")["date"].min()
    assert report.failures == {} and set(report.rows_by_source) == {"sample"}
    assert report.fetched_from == HISTORY_START and windows["AMZN"] == HISTORY_START
    assert seconds < 2 * TIMEOUT + 2 * MARGIN, f"{seconds:.2f} s for 4 windows"


def test_the_next_ingestion_run_tries_a_source_found_down_again(db_path: Path) -> None:
    """The memory lasts one run: a long-lived process (the CLI, a notebook) retries IB the next night."""
    down = FakeSource("ibkr", unavailable="connection refused")
    chain = SourceChain([down, FakeSource("backup")])
    writer = MarketDBWriter(db_path)
    try:
        for day in ("2026-11-24", DAY):
            report = ingest_sessions(writer, chain, ["AAPL"], START, day)
            assert report.rows_by_source.keys() == {"backup"}
    finally:
        writer.close()
    assert len(down.calls) == 2
