"""Task 1 as assets: bars, corporate actions, fundamentals and symbol metadata; partition D is session D's rows.

One multi-asset writes all four tables in one transaction, so a partition is never half-written. A range
of partitions (a backfill, a catch-up) runs as one run (`BackfillPolicy.single_run()`) that fetches the
range's sessions and logs its progress. Its checks (completeness against the universe on every session of
the range, unexplained jumps) are blocking because every downstream stage reads these prices.
"""

import dagster as dg

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.ingestion.checks import JUMP_LIMIT, unexplained_jumps, worst_session
from turbomode_dagster.ingestion.run import IngestionReport, ingest_sessions
from turbomode_dagster.orchestration.metadata import on_last_session, preview_table
from turbomode_dagster.orchestration.partitions import SESSION_KEYED_ASSETS, trading_days
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.sources.chain import SourceChain

GROUP = "market_data"
COMPLETENESS_FLOOR = 0.95
PREVIEW_COLUMNS = ["symbol", "date", "close", "volume", "source"]  # narrow enough that the UI does not clip it

DAILY_BARS, CORPORATE_ACTIONS, FUNDAMENTALS, SYMBOL_METADATA = SESSION_KEYED_ASSETS[:4]
SPECS = [
    dg.AssetSpec(
        DAILY_BARS,
        description="Daily OHLCV bars as traded (unadjusted), one row per symbol and NYSE session, "
        "with the source that supplied each row. Table daily_bars in the Master Market Data DB.",
        kinds={"sqlite", "pandas"},
        group_name=GROUP,
    ),
    dg.AssetSpec(
        CORPORATE_ACTIONS,
        description="Splits (new shares per old share) and cash dividends by ex-date: tables splits "
        "and dividends. Adjusted prices are derived from these and daily_bars (asset adjusted_prices).",
        kinds={"sqlite"},
        group_name=GROUP,
    ),
    dg.AssetSpec(
        FUNDAMENTALS,
        description="Quarterly fundamentals with the date each became available, for point-in-time use.",
        kinds={"sqlite"},
        group_name=GROUP,
    ),
    dg.AssetSpec(
        SYMBOL_METADATA,
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
        description=f"At least {COMPLETENESS_FLOOR:.0%} of the universe has a bar on every session of the run "
        "(the worst session is reported).",
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
    """The Task 1 multi-asset over NYSE sessions from the configured history start; a range runs as one run."""

    @dg.multi_asset(
        name="market_data",
        specs=SPECS,
        check_specs=CHECKS,
        partitions_def=trading_days(settings.history.start_date),
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=retry_policy_for(settings.task(TaskId.INGESTION)),
        pool=DATABASE_WRITE_POOL,
        description="Task 1: fetch the run's sessions through the source chain, validate, quarantine bad rows, "
        "write in one transaction.",
    )
    def market_data(
        context: dg.AssetExecutionContext,
        turbomode: TurboModeHome,
        master_db: MasterDBWriteAccess,
        source_chain: dg.ResourceParam[SourceChain],
    ):
        sessions = context.partition_key_range
        cfg = turbomode.settings()
        universe = list(cfg.universe.symbols)
        writer = master_db.writer()
        try:
            report = ingest_sessions(
                writer,
                source_chain,
                universe,
                cfg.history.start_date,
                sessions.start,
                sessions.end,
                run_id=context.run.run_id,
                progress=context.log.info,
            )
        finally:
            writer.close()
        context.log.info(_summary(report))
        yield from _results(context, report)
        yield from _check_results(report, turbomode, universe)

    return market_data


def _summary(report: IngestionReport) -> str:
    if not report.is_session:
        return f"{report.label} is not a range of NYSE sessions: nothing to ingest"
    failed = ", ".join(f"{s} ({'; '.join(f'{k}: {v}' for k, v in r.items())})" for s, r in report.failures.items())
    return (
        f"{report.label} ({len(report.sessions)} sessions): bars {report.rows_by_source} fetched from "
        f"{report.fetched_from}; quarantined {len(report.quarantined)}; failed symbols: {failed or 'none'}"
    )


def _results(context: dg.AssetExecutionContext, report: IngestionReport):
    """One MaterializeResult per asset; over a range, the full metadata is on its last session (`on_last_session`)."""
    written = report.rows_written
    common = {
        "partition_date": report.last,
        "date_range": dg.MetadataValue.text(f"{report.first} .. {report.last}")
        if report.is_session
        else dg.MetadataValue.text("not an NYSE session"),
        "sessions_covered": dg.MetadataValue.int(len(report.sessions)),
    }
    failures = {s: "; ".join(f"{k}: {v}" for k, v in r.items()) for s, r in report.failures.items()}
    preview = report.preview[[c for c in PREVIEW_COLUMNS if c in report.preview.columns]]
    metadata = {
        DAILY_BARS: {
            **common,
            "rows_written": dg.MetadataValue.int(written.get("daily_bars", 0)),
            "symbols_ingested": len(report.symbols_ingested),
            "new_symbols_from_history": dg.MetadataValue.json(
                {"fetched_from": report.fetched_from, "symbols": report.new_symbols} if report.new_symbols else {}
            ),
            "rows_by_source": dg.MetadataValue.json(report.rows_by_source),
            "symbols_failed": dg.MetadataValue.json(failures),
            "sources_down": dg.MetadataValue.json(report.sources_down),
            "quarantined_rows": dg.MetadataValue.int(len(report.quarantined)),
            "quarantine_reasons": dg.MetadataValue.json(
                report.quarantined["reason"].value_counts().to_dict() if len(report.quarantined) else {}
            ),
            "preview": preview_table(preview),
        },
        CORPORATE_ACTIONS: {
            **common,
            "splits_written": dg.MetadataValue.int(written.get("splits", 0)),
            "dividends_written": dg.MetadataValue.int(written.get("dividends", 0)),
        },
        FUNDAMENTALS: {**common, "rows_written": dg.MetadataValue.int(written.get("fundamentals", 0))},
        SYMBOL_METADATA: {**common, "rows_written": dg.MetadataValue.int(written.get("symbol_metadata", 0))},
    }
    per_session = {DAILY_BARS: _bars_by_session(report)}
    for key, values in metadata.items():
        yield dg.MaterializeResult(asset_key=key, metadata=on_last_session(context, values, key, per_session.get(key)))


def _bars_by_session(report: IngestionReport) -> dict[str, dict[str, object]]:
    """Each session's own bar counts, the numbers daily_bars trends across partitions."""
    bars = report.bars_per_session
    rejected = report.quarantined
    quarantined = rejected[rejected["table_name"] == "daily_bars"].groupby("date").size() if len(rejected) else {}
    return {
        day: {
            "rows_written": dg.MetadataValue.int(int(bars.get(day, 0))),
            "symbols_ingested": dg.MetadataValue.int(int(bars.get(day, 0))),
            "quarantined_rows": dg.MetadataValue.int(int(quarantined.get(day, 0))),
        }
        for day in report.sessions
    }


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
        # The jump check guards the whole table, so a bad bar stored by an earlier run still fails it.
        history = reader.closes()
        splits = reader.splits()
    finally:
        reader.close()
    worst, coverage, missing, short = worst_session(history, universe, report.sessions, COMPLETENESS_FLOOR)
    yield dg.AssetCheckResult(
        check_name="universe_complete",
        asset_key=DAILY_BARS,
        passed=coverage >= COMPLETENESS_FLOOR,
        metadata={
            "coverage": coverage,
            "worst_session": worst,
            "missing_symbols": dg.MetadataValue.json(missing),
            "sessions_below_floor": dg.MetadataValue.int(short),
        },
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
