"""Task 2, part 1 as assets: the point-in-time feature panel and the labelled training samples.

Both are partitioned by NYSE session: partition D holds every (symbol, date) up to D, computed only
from what the Master DB knew at D's close, and is stored as Parquet under $TURBOMODE_HOME/assets.
"""

import dagster as dg
import pandas as pd

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.features import compute_features, make_labels, training_samples
from turbomode_dagster.orchestration.metadata import preview_table
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for

GROUP = "features"
MARKET_DATA = [dg.AssetKey(k) for k in ("daily_bars", "corporate_actions", "fundamentals", "symbol_metadata")]


def build_feature_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """feature_panel and training_samples over the same session partitions as the market data."""
    partitions = trading_days(settings.history.start_date)
    retry_policy = retry_policy_for(settings.task(TaskId.ORCHESTRATOR))

    @dg.asset(
        partitions_def=partitions,
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        deps=MARKET_DATA,
        io_manager_key="parquet_io_manager",
        retry_policy=retry_policy,
        description="Point-in-time features for every symbol and session up to the partition's session: "
        "TA-Lib-defined RSI/MACD/ATR/Bollinger plus scale-free returns, trend, volatility, volume, candle, "
        "cross-sectional and fundamental ratios. pandas on the CPU, cuDF on a GPU (compute.backend).",
    )
    def feature_panel(context: dg.AssetExecutionContext, turbomode: TurboModeHome) -> pd.DataFrame:
        cfg = turbomode.settings()
        history = turbomode.market_history(context.partition_key)
        features = compute_features(
            history.bars, backend=cfg.compute.backend, sectors=history.sectors, fundamentals=history.fundamentals
        )
        context.log.info(f"features computed on {features.attrs['backend']}: {features.attrs['backend_reason']}")
        context.add_output_metadata(
            {
                "backend": features.attrs["backend"],
                "backend_reason": features.attrs["backend_reason"],
                **_shape(features),
                "features": len(features.columns) - 2,
                "preview": preview_table(features[features["date"] == features["date"].max()]),
            }
        )
        return features

    @dg.asset(
        name="training_samples",
        partitions_def=partitions,
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        deps=MARKET_DATA,
        io_manager_key="parquet_io_manager",
        retry_policy=retry_policy,
        description="Features joined with SELL/HOLD/BUY labels from the forward close-to-close return over "
        "labels.horizon sessions; rows whose label window runs past the partition's session are left out.",
    )
    def training_samples_asset(
        context: dg.AssetExecutionContext, turbomode: TurboModeHome, feature_panel: pd.DataFrame
    ) -> pd.DataFrame:
        cfg = turbomode.settings()
        history = turbomode.market_history(context.partition_key)
        labels = make_labels(history.bars, cfg.labels.horizon, cfg.labels.sell_threshold, cfg.labels.buy_threshold)
        samples = training_samples(feature_panel, labels)
        balance = samples["label"].map({0: "SELL", 1: "HOLD", 2: "BUY"}).value_counts(normalize=True)
        context.add_output_metadata(
            {
                **_shape(samples),
                "class_balance": dg.MetadataValue.json({k: round(float(v), 4) for k, v in balance.items()}),
                "horizon": cfg.labels.horizon,
                "unlabelled_rows_left_out": int(labels["label"].isna().sum()),
            }
        )
        return samples

    return [feature_panel, training_samples_asset]


def _shape(frame: pd.DataFrame) -> dict:
    return {
        "rows": len(frame),
        "symbols": int(frame["symbol"].nunique()),
        "date_range": f"{frame['date'].min():%Y-%m-%d} .. {frame['date'].max():%Y-%m-%d}" if len(frame) else "empty",
    }
