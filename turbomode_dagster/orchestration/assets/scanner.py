"""Task 3 as an asset: the overnight scan, predictions and signals for the next NYSE session.

Partition D scores every universe symbol's bar of session D with the champion ensemble and replaces
D's rows in TurboMode.db's `predictions` and `signals`, so a rerun leaves the tables as one run did.
It reads only session D's rows of the feature_panel dataset.
"""

from pathlib import Path

import dagster as dg

from turbomode_dagster import calendar
from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.models.registry import load_ensemble
from turbomode_dagster.orchestration.metadata import preview_table
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.scanner import Scan, scan_session
from turbomode_dagster.signals.preview import signal_counts, signal_preview
from turbomode_dagster.storage.session_dataset import SessionDataset
from turbomode_dagster.storage.turbomode_db import TurboModeDB

GROUP = "scanner"
PREVIEW_ROWS = 20


def build_scanner_assets(settings: Settings) -> dg.AssetsDefinition:
    """overnight_signals over session partitions."""

    @dg.asset(
        partitions_def=trading_days(settings.history.start_date),
        group_name=GROUP,
        pool=DATABASE_WRITE_POOL,
        kinds={"xgboost", "sqlite"},
        deps=[dg.AssetKey("trained_ensemble")],
        retry_policy=retry_policy_for(settings.task(TaskId.OVERNIGHT_SCANNER)),
        description="Predictions (p_sell, p_hold, p_buy) and BUY/SELL/HOLD signals with confidence and "
        "their top SHAP features for the next NYSE session, from the champion model; tables predictions "
        "and signals in TurboMode.db.",
    )
    def overnight_signals(
        context: dg.AssetExecutionContext, turbomode: TurboModeHome, feature_panel: SessionDataset
    ) -> dg.MaterializeResult:
        cfg = turbomode.settings()
        day = context.partition_key
        db = TurboModeDB.at_home(turbomode.path())
        champion = db.champion()
        if champion is None:
            raise dg.Failure(
                description=f"no champion model in {db.path}: train first (job run_orchestrator for {day}); "
                "a trained model becomes champion only when it beats the class-prior baseline out of sample",
                metadata={"models": dg.MetadataValue.json([m.model_version for m in db.models()])},
                allow_retries=False,
            )
        target = calendar.next_session(day)
        scan = scan_session(
            feature_panel.read(day, day),
            list(cfg.universe.symbols),
            load_ensemble(Path(champion.artifact_path)),
            champion.model_version,
            day,
            target,
            cfg.scanner.min_probability,
            cfg.scanner.top_features,
        )
        if scan.missing:
            context.log.warning(f"no bar on {day} for {len(scan.missing)} symbol(s), not scored: {scan.missing}")
        db.replace_scan(day, scan.predictions, scan.signals)
        metadata = _metadata(scan, champion.model_version, day, target)
        metadata["turbomode_db_bytes"] = dg.MetadataValue.int(turbomode.stored_bytes(db.path))
        return dg.MaterializeResult(metadata=metadata)

    return overnight_signals


def _metadata(scan: Scan, model_version: str, day: str, target: str) -> dict[str, object]:
    """The preview (BUY and SELL by confidence first, then HOLD) and the counts the Plots tab trends."""
    counts = signal_counts(scan.signals)
    return {
        "model_version": model_version,
        "as_of_date": day,
        "target_date": target,
        "signals": dg.MetadataValue.json(counts),
        **{f"signals_{name.lower()}": dg.MetadataValue.int(n) for name, n in counts.items()},
        "symbols_scored": dg.MetadataValue.int(len(scan.predictions)),
        "symbols_missing": dg.MetadataValue.json(scan.missing),
        "preview": preview_table(signal_preview(scan.signals, PREVIEW_ROWS), PREVIEW_ROWS),
    }
