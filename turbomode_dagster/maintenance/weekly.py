"""One weekly maintenance pass over a TURBOMODE_HOME, in a safe order, with one report of what it did.

Both databases are checked first and vacuumed only if intact; model retention needs TurboMode.db's
registry to know the champion, so it is skipped (and says so) when that database is missing or
damaged. With it go the per-night rows of TurboMode.db that retention bounds (`registry_rows`: the
drift baselines of versions losing their artifacts, backtests of sessions beyond `keep_sessions`).
Then the Parquet partitions, atomic-write temporaries, scratch folders and logs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from turbomode_dagster.config import Maintenance, assets_root, steps_folder
from turbomode_dagster.maintenance.databases import DatabaseResult, maintain_database
from turbomode_dagster.maintenance.files import clean_atomic_temporaries, clean_step_outputs, clean_temp_folders
from turbomode_dagster.maintenance.logs import (
    ARCHIVE_DIR,
    ArchiveResult,
    archive_logs,
    compute_log_files,
    platform_log_files,
    platform_logs,
    prune_archives,
)
from turbomode_dagster.maintenance.outcome import FolderOutcome
from turbomode_dagster.maintenance.registry_rows import RowsOutcome, prune_backtests, prune_baselines
from turbomode_dagster.maintenance.retention import (
    ModelsToKeep,
    models_to_keep,
    prune_models,
    prune_partitions,
)
from turbomode_dagster.storage.locations import location
from turbomode_dagster.storage.turbomode_db import TurboModeDB

SECONDS_PER_DAY = 86_400
PLATFORM_LOGS, COMPUTE_LOGS = "turbomode", "dagster_compute_logs"


@dataclass(frozen=True)
class MaintenanceReport:
    """Everything one pass found and did."""

    databases: tuple[DatabaseResult, ...]
    folders: tuple[FolderOutcome, ...]
    archive: ArchiveResult
    models: ModelsToKeep | None
    models_skipped: str | None  # why model retention did not run, when it did not
    rows: tuple[RowsOutcome, ...] = ()  # TurboMode.db rows removed by retention (none when it was skipped)

    @property
    def damaged(self) -> tuple[DatabaseResult, ...]:
        """Databases that failed integrity_check (left unvacuumed)."""
        return tuple(db for db in self.databases if not db.intact)

    @property
    def bytes_reclaimed(self) -> int:
        """Bytes given back by VACUUM and by removed files (archived logs count net of the archive)."""
        removed = sum(outcome.bytes for outcome in self.folders) + sum(o.bytes for o in self.archive.sources.values())
        return sum(db.bytes_reclaimed for db in self.databases) + removed - self.archive.archive_bytes

    def summary_table(self) -> pd.DataFrame:
        """One row per database and per folder step: what it is, bytes reclaimed, files, and the result."""
        rows = [
            {
                "target": f"database {db.name}",
                "bytes_reclaimed": db.bytes_reclaimed,
                "files": 0,
                "result": ("vacuumed" if db.vacuumed else "NOT vacuumed: " + "; ".join(db.integrity))
                if db.present
                else "absent",
            }
            for db in self.databases
        ]
        steps = [(o, "removed") for o in self.folders] + [(o, "archived") for o in self.archive.sources.values()]
        rows += [
            {"target": o.step, "bytes_reclaimed": o.bytes, "files": o.files, "result": done if o.files else "none"}
            for o, done in steps
        ]
        rows += [{"target": o.step, "bytes_reclaimed": 0, "files": 0, "result": _rows_removed(o)} for o in self.rows]
        return pd.DataFrame(rows, columns=["target", "bytes_reclaimed", "files", "result"])


def run_maintenance(
    home: Path, master_db: Path, dagster_storage: Path | None, cfg: Maintenance, now: dt.datetime
) -> MaintenanceReport:
    """Check and vacuum both databases, apply retention, clean temporaries and archive old logs."""
    turbomode_db = TurboModeDB.at_home(home)
    databases = (maintain_database("market_data", master_db), maintain_database("turbomode", turbomode_db.path))
    models, skipped, rows = None, _why_no_model_retention(databases[1]), ()
    folders = [prune_partitions(location(assets_root(home)), cfg.keep_sessions)]
    if skipped is None:
        models = models_to_keep(turbomode_db, cfg.keep_model_versions, cfg.keep_sessions)
        folders.append(prune_models(home, models))
        rows = (prune_baselines(turbomode_db, models), prune_backtests(turbomode_db, cfg.keep_sessions))
    stamp, max_age = now.timestamp(), cfg.temp_max_age_hours * 3600
    folders.append(clean_atomic_temporaries(home, stamp, max_age))
    folders += clean_temp_folders(home, cfg.temp_folders, stamp, max_age)
    folders.append(clean_step_outputs(steps_folder(home), stamp, max_age))
    sources = {PLATFORM_LOGS: (platform_logs(home), platform_log_files(home))}
    if dagster_storage is not None:
        sources[COMPUTE_LOGS] = (dagster_storage, compute_log_files(dagster_storage))
    cutoff = stamp - cfg.log_retention_days * SECONDS_PER_DAY
    archive = archive_logs(home / ARCHIVE_DIR, sources, cutoff, now)
    if cfg.archive_retention_days is not None:
        folders.append(prune_archives(home / ARCHIVE_DIR, stamp - cfg.archive_retention_days * SECONDS_PER_DAY))
    return MaintenanceReport(databases, tuple(folders), archive, models, skipped, rows)


def _rows_removed(outcome: RowsOutcome) -> str:
    """'removed 3 rows (drift_baselines 3)', or 'none'."""
    if not outcome.total:
        return "none"
    tables = ", ".join(f"{table} {n}" for table, n in outcome.rows.items() if n)
    return f"removed {outcome.total} rows ({tables})"


def _why_no_model_retention(turbomode_db: DatabaseResult) -> str | None:
    """Model artifacts are only pruned against a registry that exists and is intact."""
    if not turbomode_db.present:
        return "TurboMode.db does not exist yet: no registry, so every model artifact is kept"
    if not turbomode_db.intact:
        return "TurboMode.db failed integrity_check: its registry cannot be trusted, so every model artifact is kept"
    return None
