"""The adjusted price panel, built once per session from the Master DB and shared by every consumer.

Partition D is session D's rows, forward (causally) adjusted: a stored row never changes when later
sessions arrive, so features, samples, backtests and drift all read one stored basis instead of
re-adjusting the Master DB's history each.
"""

import dagster as dg
import pandas as pd

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.prices import forward_adjusted_window

GROUP = "market_data"
MARKET_DATA = [dg.AssetKey(k) for k in ("daily_bars", "corporate_actions", "fundamentals", "symbol_metadata")]


def build_adjusted_prices_asset(settings: Settings) -> dg.AssetsDefinition:
    """adjusted_prices over session partitions; a range backfills in one run."""

    @dg.asset(
        partitions_def=trading_days(settings.history.start_date),
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        deps=MARKET_DATA,
        io_manager_key="session_dataset_io_manager",
        retry_policy=retry_policy_for(settings.task(TaskId.INGESTION)),
        description="Split- and dividend-adjusted OHLCV per symbol and session, forward adjusted (each bar "
        "scaled by the events on or before it, from history.start_date), so a stored row never changes; "
        "with close_raw (as traded) and adj_factor. Dataset $TURBOMODE_HOME/datasets/adjusted_prices/.",
    )
    def adjusted_prices(context: dg.AssetExecutionContext, turbomode: TurboModeHome) -> pd.DataFrame:
        first, last = context.partition_keys[0], context.partition_keys[-1]
        symbols = turbomode.settings().universe.symbols
        reader = turbomode.market_reader()
        try:
            bars = reader.bars(symbols=symbols, end=last)
            rows = forward_adjusted_window(bars, reader.splits(symbols), reader.dividends(symbols), first, last)
        finally:
            reader.close()
        context.add_output_metadata(
            {
                "rows": dg.MetadataValue.int(len(rows)),
                "symbols": dg.MetadataValue.int(int(rows["symbol"].nunique())),
                "sessions": f"{first} .. {last}",
            }
        )
        return rows

    return adjusted_prices
