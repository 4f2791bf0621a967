"""Task 6 as an asset: weekly maintenance of both databases and of the files under TURBOMODE_HOME.

It runs in the database write pool, so it never checks or vacuums a database while a task writes
it, and holds the Master DB write access resource beside ingestion. A database that fails
`PRAGMA integrity_check` is left unvacuumed, and the blocking check `databases_intact` fails with the
database and SQLite's messages, which fails the run: the damage shows in the UI and in the run's status.
"""

import datetime as dt
import logging
from pathlib import Path

import dagster as dg
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.maintenance.weekly import MaintenanceReport, run_maintenance
from turbomode_dagster.orchestration.metadata import preview_table
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for

GROUP = "maintenance"
LOGGED_PATHS = 20  # removed paths named in the run log per step
WEEKLY_MAINTENANCE = dg.AssetKey("weekly_maintenance")
INTEGRITY_CHECK = dg.AssetCheckSpec(
    "databases_intact",
    asset=WEEKLY_MAINTENANCE,
    blocking=True,
    description="PRAGMA integrity_check passes on the Master DB and TurboMode.db (a failing one is not vacuumed).",
)


def build_maintenance_assets(settings: Settings) -> dg.AssetsDefinition:
    """The unpartitioned Task 6 asset."""

    @dg.asset(
        key=WEEKLY_MAINTENANCE,
        group_name=GROUP,
        kinds={"sqlite", "parquet"},
        pool=DATABASE_WRITE_POOL,
        check_specs=[INTEGRITY_CHECK],
        retry_policy=retry_policy_for(settings.task(TaskId.WEEKLY_MAINTENANCE)),
        description="Task 6: integrity_check, wal_checkpoint(TRUNCATE) and VACUUM of both databases; retention "
        "of Parquet partitions and model artifacts (maintenance section of the config); removal of "
        "atomic-write temporaries and scratch files; logs older than log_retention_days archived to "
        "$TURBOMODE_HOME/archive/.",
    )
    def weekly_maintenance(
        context: dg.AssetExecutionContext, turbomode: TurboModeHome, master_db: MasterDBWriteAccess
    ) -> dg.MaterializeResult:
        cfg = turbomode.settings().maintenance
        storage = compute_log_folder(context.instance)
        report = run_maintenance(turbomode.path(), master_db.database_file(), storage, cfg, _now())
        log_report(context.log, report)
        return dg.MaterializeResult(metadata=maintenance_metadata(report), check_results=[integrity_result(report)])

    return weekly_maintenance


def log_report(log: logging.Logger, report: MaintenanceReport) -> None:
    """Damage as errors, skipped retention as a warning, and what each step removed, in the run's log."""
    for db in report.damaged:
        log.error(f"{db.name} ({db.path}) failed integrity_check, not vacuumed: {'; '.join(db.integrity)}")
    if report.models_skipped:
        log.warning(report.models_skipped)
    for outcome in (*report.folders, *report.archive.sources.values()):
        if outcome.files:
            shown = ", ".join(str(path) for path in outcome.removed[:LOGGED_PATHS])
            log.info(f"{outcome.step}: {outcome.files} files, {outcome.bytes} bytes: {shown}")


def compute_log_folder(instance: dg.DagsterInstance) -> Path | None:
    """Where the instance keeps captured step logs on disk, or None when they are not local files."""
    manager = instance.compute_log_manager
    if isinstance(manager, LocalComputeLogManager):
        return Path(manager._base_dir)  # the folder its config names (default $DAGSTER_HOME/storage)
    return None


def integrity_result(report: MaintenanceReport) -> dg.AssetCheckResult:
    """Passed, or failed naming each damaged database with SQLite's messages."""
    damaged = {db.name: {"path": str(db.path), "messages": list(db.integrity)} for db in report.damaged}
    checked = [db.name for db in report.databases if db.present]
    return dg.AssetCheckResult(
        check_name=INTEGRITY_CHECK.name,
        passed=not damaged,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(
            f"{name} failed integrity_check: {' | '.join(d['messages'])}" for name, d in damaged.items()
        )
        or f"integrity_check ok: {', '.join(checked) or 'no database yet'}",
        metadata={"damaged": dg.MetadataValue.json(damaged), "checked": dg.MetadataValue.json(checked)},
    )


def maintenance_metadata(report: MaintenanceReport) -> dict[str, object]:
    """Numbers the Plots tab trends (bytes per database and folder, files removed, archived) and one table."""
    metadata: dict[str, object] = {
        "bytes_reclaimed": dg.MetadataValue.int(report.bytes_reclaimed),
        "databases_damaged": dg.MetadataValue.int(len(report.damaged)),
        "files_removed": dg.MetadataValue.int(sum(outcome.files for outcome in report.folders)),
        "logs_archived": dg.MetadataValue.int(report.archive.files),
        "archive_bytes": dg.MetadataValue.int(report.archive.archive_bytes),
    }
    for db in report.databases:
        metadata[f"{db.name}_bytes_reclaimed"] = dg.MetadataValue.int(db.bytes_reclaimed)
        metadata[f"{db.name}_bytes"] = dg.MetadataValue.int(db.bytes_after)
    metadata["summary"] = preview_table(report.summary_table(), 50)
    if report.archive.archive is not None:
        metadata["archive"] = dg.MetadataValue.path(str(report.archive.archive))
    if report.models is not None:
        metadata["models_kept"] = dg.MetadataValue.json(
            {
                "champion": report.models.champion,
                "newest": sorted(report.models.newest),
                "behind_kept_sessions": sorted(report.models.recent_sessions),
            }
        )
    else:
        metadata["models_kept"] = dg.MetadataValue.text(report.models_skipped or "")
    return metadata


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
