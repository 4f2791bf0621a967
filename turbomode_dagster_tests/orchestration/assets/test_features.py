"""The feature and training-sample assets, materialised after ingestion on the built-in sample market."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.config import load_settings
from turbomode_dagster.features import FEATURE_COLUMNS
from turbomode_dagster.orchestration.assets.features import build_feature_assets
from turbomode_dagster.orchestration.assets.market_data import build_market_data_assets
from turbomode_dagster.orchestration.io_managers import ParquetIOManager
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.sample import SampleSource
from turbomode_dagster.storage.market_db import market_db_path
from turbomode_dagster_tests.master_db_guard import master_db_untouched

DAY = "2026-11-25"
SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "KO"]


@pytest.fixture
def night(make_config, home: Path):
    """Ingest and build features for DAY on five sample symbols over about 18 months."""
    config = make_config({"universe.symbols": SYMBOLS, "history.start_date": "2025-05-01", "sources.order": ["sample"]})
    settings = load_settings(config)
    turbomode = TurboModeHome(home=str(home), config_file=str(config))
    resources = {
        "turbomode": turbomode,
        "master_db": MasterDBWriteAccess(turbomode=turbomode),
        "source_chain": SourceChain([SampleSource(seed=7)]),
        "parquet_io_manager": ParquetIOManager(root=str(home / "assets")),
    }
    assets = [build_market_data_assets(settings), *build_feature_assets(settings)]
    result = dg.materialize(assets, resources=resources, partition_key=DAY)
    return result, home


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(key)[0].metadata.items()}


def test_feature_panel_is_stored_per_partition_with_backend_and_shape(night):
    result, home = night
    panel = pd.read_parquet(home / "assets" / "feature_panel" / f"{DAY}.parquet")
    assert list(panel.columns) == ["symbol", "date", *FEATURE_COLUMNS]
    assert set(panel["symbol"]) == set(SYMBOLS)
    assert panel["date"].max() == pd.Timestamp(DAY)
    meta = _metadata(result, "feature_panel")
    assert meta["backend"] == "pandas"
    assert "auto chose pandas" in meta["backend_reason"]
    assert meta["rows"] == len(panel)
    assert meta["date_range"].endswith(DAY)
    assert meta["features"] == len(FEATURE_COLUMNS)
    latest = meta["latest_session"]
    assert [c.name for c in latest.schema.columns] == ["feature", "min", "median", "max"]
    assert [r.data["feature"] for r in latest.records] == list(FEATURE_COLUMNS), "one row per feature"
    last = panel[panel["date"] == panel["date"].max()]
    assert meta["latest_session_missing_values"] == int(last[list(FEATURE_COLUMNS)].isna().sum().sum())


def test_training_samples_leave_out_rows_whose_label_window_passes_the_night(night):
    result, home = night
    samples = pd.read_parquet(home / "assets" / "training_samples" / f"{DAY}.parquet")
    last_labelled = calendar.sessions("2026-11-01", DAY)[-6]  # horizon 5: the 5 latest sessions have no label
    assert samples["date"].max() == pd.Timestamp(last_labelled)
    assert set(samples["label"].unique()) <= {0, 1, 2}
    meta = _metadata(result, "training_samples")
    assert meta["rows"] == len(samples)
    assert meta["unlabelled_rows_left_out"] == 5 * len(SYMBOLS)
    assert set(meta["class_balance"]) == {"SELL", "HOLD", "BUY"}
    assert abs(sum(meta["class_balance"].values()) - 1) < 1e-3
    raw = result.asset_materializations_for_node("training_samples")[0].metadata
    buy_share = float((samples["label"] == 2).mean())
    assert isinstance(raw["share_buy"], dg.FloatMetadataValue) and raw["share_buy"].value == pytest.approx(buy_share)
    picture = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", meta["class_balance_picture"])
    assert picture is not None and base64.b64decode(picture.group(1)).startswith(b"\x89PNG")


def test_feature_assets_never_open_the_master_db_for_writing(make_config, home, night):
    """Any read-write open of market_data.db (at sqlite3.connect itself) or any change to its bytes fails."""
    _, home = night
    config = make_config({"universe.symbols": SYMBOLS, "history.start_date": "2025-05-01"})
    settings = load_settings(config)
    with master_db_untouched(market_db_path(home)):
        result = dg.materialize(
            build_feature_assets(settings),
            resources={
                "turbomode": TurboModeHome(home=str(home), config_file=str(config)),
                "parquet_io_manager": ParquetIOManager(root=str(home / "assets")),
            },
            partition_key=DAY,
            selection=["feature_panel", "training_samples"],
        )
    assert result.success
