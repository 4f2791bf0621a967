"""Task 1 as assets: bars, corporate actions, fundamentals and symbol metadata, one NYSE session each.

One multi-asset writes all four tables in one transaction, so a partition is never half-written; its
checks (completeness against the universe, unexplained jumps) are blocking because every downstream
stage reads these prices.
"""

import dagster as dg

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.ingestion.checks import JUMP_LIMIT, missing_symbols, unexplained_jumps
from turbomode_dagster.ingestion.run import IngestionReport, ingest_partition
from turbomode_dagster.orchestration.metadata import preview_table
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.sources.chain import SourceChain

GROUP = "market_data"
COMPLETENESS_FLOOR = 0.95
PREVIEW_COLUMNS = ["symbol", "date", "close", "volume", "source"]  # narrow enough that the UI does not clip it

DAILY_BARS = dg.AssetKey("daily_bars")
SPECS = [
    dg.AssetSpec(
        DAILY_BARS,
        description="Daily OHLCV bars as traded (unadjusted), one row per symbol and NYSE session, "
        "with the source that supplied each row. Table daily_bars in the Master Market Data DB.",
        kinds={"sqlite", "pandas"},
        group_name=GROUP,
    ),
    dg.AssetSpec(
        "corporate_actions",
        description="Splits (new shares per old share) and cash dividends by ex-date: tables splits "
        "and dividends. Adjusted prices are derived from these and daily_bars, never stored.",
        kinds={"sqlite"},
        group_name=GROUP,
    ),
    dg.AssetSpec(
        "fundamentals",
        description="Quarterly fundamentals with the date each became available, for point-in-time use.",
        kinds={"sqlite"},
        group_name=GROUP,
    ),
    dg.AssetSpec(
        "symbol_metadata",
        description="Name, sector, industry, exchange and currency of each symbol in the universe.",
        kinds={"sqlite"},
        group_name=GROUP,
    ),
]
CHECKS = [
    dg.AssetCheckSpec(
        "universe_complete",
        asset=DAILY_BARS,
        blocking=True,
        description=f"At least {COMPLETENESS_FLOOR:.0%} of the universe has a bar on the partition's session.",
    ),
    dg.AssetCheckSpec(
        "no_unexplained_jumps",
        asset=DAILY_BARS,
        blocking=True,
        description=f"No close-to-close move beyond {JUMP_LIMIT} in log terms that a split does not explain, "
        "anywhere in the stored history (ingestion quarantines such bars before writing them).",
    ),
]


def build_market_data_assets(settings: Settings) -> dg.AssetsDefinition:
    """The Task 1 multi-asset over NYSE sessions from the configured history start."""

    @dg.multi_asset(
        name="market_data",
        specs=SPECS,
        check_specs=CHECKS,
        partitions_def=trading_days(settings.history.start_date),
        retry_policy=retry_policy_for(settings.task(TaskId.INGESTION)),
        pool=DATABASE_WRITE_POOL,
        description="Task 1: fetch through the source chain, validate, quarantine bad rows, write in one transaction.",
    )
    def market_data(
        context: dg.AssetExecutionContext,
        turbomode: TurboModeHome,
        master_db: MasterDBWriteAccess,
        source_chain: dg.ResourceParam[SourceChain],
    ):
        day = context.partition_key
        cfg = turbomode.settings()
        universe = list(cfg.universe.symbols)
        writer = master_db.writer()
        try:
            report = ingest_partition(writer, source_chain, universe, cfg.history.start_date, day, context.run.run_id)
        finally:
            writer.close()
        context.log.info(_summary(report))
        yield from _results(report)
        yield from _check_results(report, turbomode, universe)

    return market_data


def _summary(report: IngestionReport) -> str:
    if not report.is_session:
        return f"{report.partition_date} is not an NYSE session: nothing to ingest"
    failed = ", ".join(f"{s} ({'; '.join(f'{k}: {v}' for k, v in r.items())})" for s, r in report.failures.items())
    return (
        f"{report.partition_date}: bars {report.rows_by_source} from {report.window_start}; "
        f"quarantined {len(report.quarantined)}; failed symbols: {failed or 'none'}"
    )


def _results(report: IngestionReport):
    written = report.rows_written
    common = {
        "partition_date": report.partition_date,
        "date_range": dg.MetadataValue.text(f"{report.window_start} .. {report.partition_date}")
        if report.is_session
        else dg.MetadataValue.text("not an NYSE session"),
    }
    failures = {s: "; ".join(f"{k}: {v}" for k, v in r.items()) for s, r in report.failures.items()}
    preview = report.bars.sort_values(["date", "symbol"]).tail(10) if not report.bars.empty else report.bars
    preview = preview[[c for c in PREVIEW_COLUMNS if c in preview.columns]]
    yield dg.MaterializeResult(
        asset_key=DAILY_BARS,
        metadata={
            **common,
            "rows_written": dg.MetadataValue.int(written.get("daily_bars", 0)),
            "symbols_ingested": int(report.bars["symbol"].nunique()) if not report.bars.empty else 0,
            "rows_by_source": dg.MetadataValue.json(report.rows_by_source),
            "symbols_failed": dg.MetadataValue.json(failures),
            "sources_down": dg.MetadataValue.json(report.sources_down),
            "quarantined_rows": dg.MetadataValue.int(len(report.quarantined)),
            "quarantine_reasons": dg.MetadataValue.json(
                report.quarantined["reason"].value_counts().to_dict() if len(report.quarantined) else {}
            ),
            "preview": preview_table(preview),
        },
    )
    yield dg.MaterializeResult(
        asset_key="corporate_actions",
        metadata={
            **common,
            "splits_written": dg.MetadataValue.int(written.get("splits", 0)),
            "dividends_written": dg.MetadataValue.int(written.get("dividends", 0)),
        },
    )
    yield dg.MaterializeResult(
        asset_key="fundamentals",
        metadata={**common, "rows_written": dg.MetadataValue.int(written.get("fundamentals", 0))},
    )
    yield dg.MaterializeResult(
        asset_key="symbol_metadata",
        metadata={**common, "rows_written": dg.MetadataValue.int(written.get("symbol_metadata", 0))},
    )


def _check_results(report: IngestionReport, turbomode: TurboModeHome, universe: list[str]):
    if not report.is_session:
        for check in CHECKS:
            yield dg.AssetCheckResult(
                check_name=check.name,
                asset_key=DAILY_BARS,
                passed=True,
                metadata={"note": "not an NYSE session"},
            )
        return
    reader = turbomode.market_reader()
    try:
        day_bars = reader.bars(start=report.partition_date, end=report.partition_date)
        # The jump check guards the whole table, so a bad bar stored by an earlier run still fails it.
        history = reader.closes()
        splits = reader.splits()
    finally:
        reader.close()
    missing = missing_symbols(day_bars, universe)
    coverage = 1 - len(missing) / len(universe)
    yield dg.AssetCheckResult(
        check_name="universe_complete",
        asset_key=DAILY_BARS,
        passed=coverage >= COMPLETENESS_FLOOR,
        metadata={"coverage": coverage, "missing_symbols": dg.MetadataValue.json(missing)},
    )
    jumps = unexplained_jumps(history, splits)
    yield dg.AssetCheckResult(
        check_name="no_unexplained_jumps",
        asset_key=DAILY_BARS,
        passed=jumps.empty,
        metadata={
            "jumps": len(jumps),
            "examples": preview_table(jumps),
        },
    )
