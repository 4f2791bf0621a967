"""Task 2, part 1 as assets: the point-in-time feature panel and the labelled training samples.

Both are session datasets under $TURBOMODE_HOME/datasets (partition D = session D's rows) and
backfill a range in one run; a session's values do not depend on how the range was split into runs
(features come from anchored blocks of the shared adjusted_prices panel, see features/history.py).
"""

import dagster as dg

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.features.chart import class_balance_png
from turbomode_dagster.features.history import WARMUP_SESSIONS, matured_sample_blocks, session_feature_blocks
from turbomode_dagster.features.summary import class_shares, feature_summary, missing_values
from turbomode_dagster.orchestration.io_managers import SessionDatasetIOManager
from turbomode_dagster.orchestration.metadata import on_last_session, png_markdown, preview_table
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.storage.session_blocks import WrittenRange, write_blocks
from turbomode_dagster.storage.session_dataset import SessionDataset

GROUP = "features"


def build_feature_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """feature_panel and training_samples over the same session partitions as the market data."""
    partitions = trading_days(settings.history.start_date)
    retry_policy = retry_policy_for(settings.task(TaskId.ORCHESTRATOR))
    common = {
        "partitions_def": partitions,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "group_name": GROUP,
        "kinds": {"pandas", "parquet"},
        "io_manager_key": "session_dataset_io_manager",
        "retry_policy": retry_policy,
    }

    @dg.asset(
        **common,
        description="Point-in-time features of each symbol on the partition's session: TA-Lib-defined "
        "RSI/MACD/ATR/Bollinger (in the session's traded units) plus scale-free returns, trend, volatility, "
        "volume, candle, cross-sectional and fundamental ratios, computed from adjusted_prices from "
        f"{WARMUP_SESSIONS} sessions before the session's calendar year. pandas on the CPU, cuDF on a GPU.",
    )
    def feature_panel(
        context: dg.AssetExecutionContext,
        turbomode: TurboModeHome,
        adjusted_prices: SessionDataset,
        session_dataset_io_manager: dg.ResourceParam[SessionDatasetIOManager],
    ) -> WrittenRange:
        cfg = turbomode.settings()
        symbols = cfg.universe.symbols
        reader = turbomode.market_reader()
        try:
            sectors = reader.metadata()[["symbol", "sector"]]
            fundamentals = reader.fundamentals(symbols=symbols, known_by=context.partition_keys[-1])
            data_start = reader.first_bar_date(symbols)
        finally:
            reader.close()
        blocks = session_feature_blocks(
            adjusted_prices,
            context.partition_keys,
            settings.history.start_date.isoformat(),
            cfg.compute.backend,
            sectors,
            fundamentals,
            data_start,
        )
        written = write_blocks(_output_dataset(context, session_dataset_io_manager), blocks)
        context.log.info(f"features computed on {written.attrs['backend']}: {written.attrs['backend_reason']}")
        last = written.last_rows
        last_session = last[last["date"] == last["date"].max()]
        latest = feature_summary(last_session)
        context.add_output_metadata(
            on_last_session(
                context,
                {
                    "backend": written.attrs["backend"],
                    "backend_reason": written.attrs["backend_reason"],
                    **_shape(written),
                    "features": dg.MetadataValue.int(len(last.columns) - 2),
                    "latest_session": preview_table(latest, len(latest)),
                    "latest_session_missing_values": dg.MetadataValue.int(missing_values(last_session)),
                },
            )
        )
        return written

    @dg.asset(
        name="training_samples",
        **common,
        metadata={"session_column": "label_date"},
        description="The labelled samples whose label matured on the partition's session: the features of "
        "each symbol's bar labels.horizon sessions earlier, joined with the SELL/HOLD/BUY label of its "
        "forward close-to-close return up to this session (from adjusted_prices); label_date is this session.",
    )
    def training_samples_asset(
        context: dg.AssetExecutionContext,
        turbomode: TurboModeHome,
        feature_panel: SessionDataset,
        adjusted_prices: SessionDataset,
        session_dataset_io_manager: dg.ResourceParam[SessionDatasetIOManager],
    ) -> WrittenRange:
        labels = turbomode.settings().labels
        blocks = matured_sample_blocks(
            feature_panel,
            adjusted_prices,
            context.partition_keys,
            settings.history.start_date.isoformat(),
            labels.horizon,
            labels.sell_threshold,
            labels.buy_threshold,
        )
        written = write_blocks(_output_dataset(context, session_dataset_io_manager), blocks, ["date", "label"])
        context.add_output_metadata(
            on_last_session(context, _samples_metadata(written, labels.horizon, context.partition_keys[-1]))
        )
        return written

    return [feature_panel, training_samples_asset]


def _output_dataset(context: dg.AssetExecutionContext, io_manager: SessionDatasetIOManager) -> SessionDataset:
    """The dataset this asset's IO manager stores it in, for writing a range block by block."""
    return io_manager.dataset(context.asset_key, context.assets_def.metadata_by_key[context.asset_key])


def _samples_metadata(written: WrittenRange, horizon: int, day: str) -> dict[str, object]:
    """Shape, class shares (numbers the Plots tab trends, and a picture of them per month)."""
    samples = written.kept
    shares = class_shares(samples)
    metadata = {
        **_shape(written),
        "class_balance": dg.MetadataValue.json({k: round(v, 4) for k, v in shares.items()}),
        **{f"share_{k.lower()}": dg.MetadataValue.float(v) for k, v in shares.items()},
        "horizon": dg.MetadataValue.int(horizon),
    }
    if len(samples):
        picture = class_balance_png(samples, f"{day}: label shares per month")
        metadata["class_balance_picture"] = png_markdown(picture, "class balance")
    return metadata


def _shape(written: WrittenRange) -> dict:
    return {
        "rows": dg.MetadataValue.int(written.rows),
        "symbols": dg.MetadataValue.int(len(written.symbols)),
        "date_range": f"{written.first_date:%Y-%m-%d} .. {written.last_date:%Y-%m-%d}" if written.rows else "empty",
    }
