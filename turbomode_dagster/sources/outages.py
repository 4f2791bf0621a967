"""Which sources were found down during the current ingestion run, so each outage costs its timeout once.

A source that raises `SourceUnavailable` (refused, DNS failure, timeout, rate limit) is not asked again
until `forget`, which the chain calls at the start of each run: a silent IB Gateway or Yahoo costs one
timeout per run, not one per fetch window. No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
import logging

from turbomode_dagster.sources.base import MarketDataBatch, MarketDataSource, SourceUnavailable

logger = logging.getLogger(__name__)


class SourceDownEarlier(SourceUnavailable):
    """The source was not asked: it was found down earlier in this run."""


class OutageMemory:
    """The sources found down in this run, by name, with the reason each was down."""

    def __init__(self) -> None:
        self._down: dict[str, str] = {}

    @property
    def down(self) -> dict[str, str]:
        """Source name -> why it was found down, for every source skipped for the rest of the run."""
        return dict(self._down)

    def forget(self) -> None:
        """A new run: every source is tried again."""
        self._down.clear()

    def fetch(self, source: MarketDataSource, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        """`source.fetch`, unless the source was down earlier in this run (`SourceDownEarlier` at once)."""
        reason = self._down.get(source.name)
        if reason is not None:
            logger.warning(
                "source %s skipped for %d symbols (%s..%s): down earlier in this run: %s",
                source.name,
                len(symbols),
                start,
                end,
                reason,
            )
            raise SourceDownEarlier(f"skipped, down earlier in this run: {reason}")
        try:
            return source.fetch(symbols, start, end)
        except SourceUnavailable as exc:
            self._down[source.name] = str(exc)
            logger.warning("source %s is down; skipped for the rest of this run: %s", source.name, exc)
            raise


class RememberedSource:
    """A source whose outages go into (and are honoured from) a shared `OutageMemory`.

    For a source used outside the chain's own order, such as IBKR's Yahoo actions source.
    """

    def __init__(self, source: MarketDataSource, memory: OutageMemory):
        self.source = source
        self.memory = memory
        self.name = source.name

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        """The wrapped source's fetch through the memory."""
        return self.memory.fetch(self.source, symbols, start, end)
