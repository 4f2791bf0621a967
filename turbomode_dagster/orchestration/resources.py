"""Dagster resources: where TurboMode keeps its files, its settings, and handles on its databases."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from turbomode_dagster.config import Settings, load_settings, settings, turbomode_home
from turbomode_dagster.orchestration.pool_slots import free_slots_of_dead_runs
from turbomode_dagster.storage.market_db import MarketDataReader, MarketDBWriter, market_db_path


class TurboModeHome(dg.ConfigurableResource):
    """TURBOMODE_HOME and the config file; empty fields fall back to the environment."""

    home: str = ""
    config_file: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """At the start of every TurboMode run: give back pool slots that dead runs still hold."""
        if context.instance is not None:
            run_id = context.run.run_id if context.run else None
            free_slots_of_dead_runs(context.instance, run_id, context.log.warning)

    def path(self) -> Path:
        """The folder holding the databases and artifacts."""
        path = Path(self.home) if self.home else turbomode_home()
        path.mkdir(parents=True, exist_ok=True)
        return path

    def settings(self) -> Settings:
        """The validated configuration."""
        return load_settings(self.config_file) if self.config_file else settings()

    def stored_bytes(self, path: Path | str) -> int:
        """Bytes on disk of a file (with its SQLite -wal beside it) or of a folder's files: a night's
        per-asset storage for its metadata."""
        target = Path(path) if Path(path).is_absolute() else self.path() / path
        if target.is_dir():
            return sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        wal = target.with_name(target.name + "-wal")
        return sum(p.stat().st_size for p in (target, wal) if p.is_file())

    def market_reader(self) -> MarketDataReader:
        """Read-only Master DB handle: writes through it fail."""
        return MarketDataReader(market_db_path(self.path()))


class MasterDBWriteAccess(dg.ConfigurableResource):
    """The only way an asset gets read-write access to the Master DB; wired to ingestion and maintenance alone.

    Every other asset receives `TurboModeHome`, which opens the Master DB read-only, so read-only is
    how the platform is wired, not a convention.
    """

    turbomode: TurboModeHome

    def writer(self) -> MarketDBWriter:
        """A read-write Master DB handle; the caller closes it."""
        return MarketDBWriter(market_db_path(self.turbomode.path()))

    def database_file(self) -> Path:
        """The Master DB file itself, for weekly maintenance, which checks, checkpoints and vacuums it."""
        return market_db_path(self.turbomode.path())
