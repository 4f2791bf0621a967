"""The fallback chain: each symbol is served by the first source in the configured order that can.

A source that is down (refused connection, DNS failure, timeout, rate limit) raises
`SourceUnavailable` and every remaining symbol moves on to the next source at once; a symbol no source
can serve is reported with each source's reason, and the rest of the universe is still returned.
The chain remembers a source that was down for the rest of the run (`begin_run` starts one), so
the later fetch windows of the run skip it instead of waiting for its timeout again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from turbomode_dagster.sources.base import MarketDataBatch, MarketDataSource, SourceUnavailable
from turbomode_dagster.sources.outages import OutageMemory, SourceDownEarlier

FRAMES = ("bars", "splits", "dividends", "fundamentals", "metadata")


@dataclass
class ChainResult:
    """Rows from every source, each tagged with a `source` column, the symbols nobody served, and
    the sources that were down (`unavailable`: name -> reason, "skipped, down earlier in this run: ..."
    for one not asked again)."""

    bars: pd.DataFrame
    splits: pd.DataFrame
    dividends: pd.DataFrame
    fundamentals: pd.DataFrame
    metadata: pd.DataFrame
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def rows_by_source(self) -> dict[str, int]:
        """How many bars each source supplied."""
        return {str(k): int(v) for k, v in self.bars["source"].value_counts().sort_index().items()}


class SourceChain:
    """Sources tried in order, per symbol; a source found down is skipped for the rest of the run.

    `outages` is the memory of who was down; pass the one given to sources used outside the order
    (IBKR's actions source) so they share it.
    """

    def __init__(self, sources: list[MarketDataSource], outages: OutageMemory | None = None):
        if not sources:
            raise ValueError("a source chain needs at least one source")
        self.sources = sources
        self.outages = outages or OutageMemory()

    def begin_run(self) -> None:
        """Start a new run: forget the outages of the previous one, so every source is tried again."""
        self.outages.forget()

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> ChainResult:
        """Fetch `symbols` over [start, end], falling back source by source for those not yet served."""
        remaining = list(symbols)
        reasons: dict[str, dict[str, str]] = {s: {} for s in symbols}
        parts: dict[str, list[pd.DataFrame]] = {name: [] for name in FRAMES}
        unavailable: dict[str, str] = {}
        for source in self.sources:
            if not remaining:
                break
            try:
                batch = self.outages.fetch(source, remaining, start, end)
            except SourceUnavailable as exc:
                reason = str(exc) if isinstance(exc, SourceDownEarlier) else f"unavailable: {exc}"
                unavailable[source.name] = reason
                for symbol in remaining:
                    reasons[symbol][source.name] = reason
                continue
            served = set(batch.bars["symbol"]) & set(remaining)
            for name in FRAMES:
                frame = getattr(batch, name)
                part = frame[frame["symbol"].isin(served)]
                if not part.empty:  # empty parts would blur the column dtypes of the concatenation
                    parts[name].append(part.assign(source=source.name))
            for symbol in remaining:
                if symbol not in served:
                    reasons[symbol][source.name] = batch.failures.get(symbol, "returned no bars")
            remaining = [s for s in remaining if s not in served]
        empty = MarketDataBatch()
        frames = {
            name: pd.concat(parts[name], ignore_index=True)
            if parts[name]
            else getattr(empty, name).assign(source=pd.Series(dtype="object"))
            for name in FRAMES
        }
        return ChainResult(**frames, failures={s: reasons[s] for s in remaining}, unavailable=unavailable)
