"""Builds the configured fallback chain from settings; client libraries are imported only when used."""

from __future__ import annotations

from pathlib import Path

from turbomode_dagster.config import Settings
from turbomode_dagster.sources.base import MarketDataSource
from turbomode_dagster.sources.chain import SourceChain


def build_source(name: str, settings: Settings, home: Path) -> MarketDataSource:
    """One source by its config name."""
    cfg = settings.sources
    if name == "sample":
        from turbomode_dagster.sources.sample import SampleSource

        return SampleSource(seed=cfg.sample.seed, planted_effect=cfg.sample.planted_effect)
    if name == "csv":
        from turbomode_dagster.sources.csv import CsvSource

        return CsvSource(home / cfg.csv.path)
    if name == "yahoo":
        from turbomode_dagster.sources.yahoo import YahooSource

        return YahooSource(timeout_seconds=cfg.yahoo.timeout_seconds)
    if name == "ibkr":
        from turbomode_dagster.sources.ibkr import IBKRSource
        from turbomode_dagster.sources.yahoo import YahooSource

        return IBKRSource(
            host=cfg.ibkr.host,
            port=cfg.ibkr.port,
            client_id=cfg.ibkr.client_id,
            timeout_seconds=cfg.ibkr.timeout_seconds,
            actions_source=YahooSource(timeout_seconds=cfg.yahoo.timeout_seconds),
        )
    raise ValueError(f"unknown source {name!r}")


def build_chain(settings: Settings, home: Path) -> SourceChain:
    """The sources in `sources.order`, tried per symbol in that order."""
    return SourceChain([build_source(name, settings, home) for name in settings.sources.order])
