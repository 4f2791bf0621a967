"""Dagster resources: where TurboMode keeps its files, its settings, and handles on its databases."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from turbomode_dagster.config import Settings, load_settings, settings, turbomode_home
from turbomode_dagster.storage.market_db import MarketDataReader, MarketDBWriter, market_db_path


class TurboModeHome(dg.ConfigurableResource):
    """TURBOMODE_HOME and the config file; empty fields fall back to the environment."""

    home: str = ""
    config_file: str = ""

    def path(self) -> Path:
        """The folder holding the databases and artifacts."""
        path = Path(self.home) if self.home else turbomode_home()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def settings(self) -> Settings:
        """The validated configuration."""
        return load_settings(self.config_file) if self.config_file else settings()

    def market_writer(self) -> MarketDBWriter:
        """Read-write Master DB handle: for ingestion and maintenance only."""
        return MarketDBWriter(market_db_path(self.path()))

    def market_reader(self) -> MarketDataReader:
        """Read-only Master DB handle: writes through it fail."""
        return MarketDataReader(market_db_path(self.path()))
