"""Task 2, part 1 as assets: the point-in-time feature panel and the labelled training samples.

Both are partitioned by NYSE session: partition D holds every (symbol, date) up to D, computed only
from what the Master DB knew at D's close, and is stored as Parquet under $TURBOMODE_HOME/assets.
"""

import dagster as dg
import pandas as pd

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.features import compute_features, make_labels, training_samples
from turbomode_dagster.features.chart import class_balance_png
from turbomode_dagster.features.summary import class_shares, feature_summary, missing_values
from turbomode_dagster.orchestration.metadata import png_markdown, preview_table
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
        last_session = features[features["date"] == features["date"].max()]
        latest = feature_summary(last_session)
        context.add_output_metadata(
            {
                "backend": features.attrs["backend"],
                "backend_reason": features.attrs["backend_reason"],
                **_shape(features),
                "features": dg.MetadataValue.int(len(features.columns) - 2),
                "latest_session": preview_table(latest, len(latest)),
                "latest_session_missing_values": dg.MetadataValue.int(missing_values(last_session)),
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
        context.add_output_metadata(_samples_metadata(samples, labels, cfg.labels.horizon, context.partition_key))
        return samples

    return [feature_panel, training_samples_asset]


def _samples_metadata(samples: pd.DataFrame, labels: pd.DataFrame, horizon: int, day: str) -> dict[str, object]:
    """Shape, class shares (numbers the Plots tab trends, and a picture of them per month), left-out rows."""
    shares = class_shares(samples)
    metadata = {
        **_shape(samples),
        "class_balance": dg.MetadataValue.json({k: round(v, 4) for k, v in shares.items()}),
        **{f"share_{k.lower()}": dg.MetadataValue.float(v) for k, v in shares.items()},
        "horizon": dg.MetadataValue.int(horizon),
        "unlabelled_rows_left_out": dg.MetadataValue.int(int(labels["label"].isna().sum())),
    }
    if len(samples):
        picture = class_balance_png(samples, f"{day}: label shares per month")
        metadata["class_balance_picture"] = png_markdown(picture, "class balance")
    return metadata


def _shape(frame: pd.DataFrame) -> dict:
    return {
        "rows": dg.MetadataValue.int(len(frame)),
        "symbols": dg.MetadataValue.int(int(frame["symbol"].nunique())),
        "date_range": f"{frame['date'].min():%Y-%m-%d} .. {frame['date'].max():%Y-%m-%d}" if len(frame) else "empty",
    }
