"""Builds the configured fallback chain from settings; client libraries are imported only when used."""

from __future__ import annotations

from pathlib import Path

from turbomode_dagster.config import Settings
from turbomode_dagster.sources.base import MarketDataSource
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.outages import OutageMemory, RememberedSource


def build_source(name: str, settings: Settings, home: Path, outages: OutageMemory | None = None) -> MarketDataSource:
    """One source by its config name; IBKR's Yahoo actions source shares `outages` with the chain."""
    cfg = settings.sources
    if name == "sample":
        from turbomode_dagster.sources.sample import RegimeShift, SampleSource

        shift = cfg.sample.regime_shift
        return SampleSource(
            seed=cfg.sample.seed,
            planted_effect=cfg.sample.planted_effect,
            regime_shift=None
            if shift is None
            else RegimeShift(shift.start_date, shift.volatility_multiplier, shift.drift_change, shift.planted_effect),
        )
    if name == "csv":
        from turbomode_dagster.sources.csv import CsvSource

        return CsvSource(home / cfg.csv.path)
    if name == "yahoo":
        from turbomode_dagster.sources.yahoo import YahooSource

        return YahooSource(timeout_seconds=cfg.yahoo.timeout_seconds)
    if name == "ibkr":
        from turbomode_dagster.sources.ibkr import IBKRSource
        from turbomode_dagster.sources.yahoo import YahooSource

        actions: MarketDataSource = YahooSource(timeout_seconds=cfg.yahoo.timeout_seconds)
        return IBKRSource(
            host=cfg.ibkr.host,
            port=cfg.ibkr.port,
            client_id=cfg.ibkr.client_id,
            timeout_seconds=cfg.ibkr.timeout_seconds,
            actions_source=actions if outages is None else RememberedSource(actions, outages),
        )
    raise ValueError(f"unknown source {name!r}")


def build_chain(settings: Settings, home: Path) -> SourceChain:
    """The sources in `sources.order`, tried per symbol in that order, sharing one outage memory."""
    outages = OutageMemory()
    return SourceChain([build_source(name, settings, home, outages) for name in settings.sources.order], outages)
