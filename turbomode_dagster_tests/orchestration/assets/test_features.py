"""adjusted_prices, feature_panel and training_samples as session datasets, materialised after ingestion.

The headline test is the issue's: one backfill of a whole range stores the same bits as a first load
followed by night-by-night runs, across a split, a dividend and a block boundary (the year change).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import fsspec
import numpy as np
import pandas as pd
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.config import load_settings
from turbomode_dagster.features import FEATURE_COLUMNS
from turbomode_dagster.features.history import PRICE_UNIT_COLUMNS, block_anchor
from turbomode_dagster.orchestration.assets.adjusted_prices import build_adjusted_prices_asset
from turbomode_dagster.orchestration.assets.features import build_feature_assets
from turbomode_dagster.orchestration.assets.market_data import build_market_data_assets
from turbomode_dagster.orchestration.io_managers import SessionDatasetIOManager
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.storage.market_db import market_db_path
from turbomode_dagster.storage.session_dataset import RECORD_FILE, SessionDataset
from turbomode_dagster_tests.conftest import FakeSource, write_config
from turbomode_dagster_tests.master_db_guard import master_db_untouched
from turbomode_dagster_tests.orchestration.assets.backfill import DATASET_ASSETS, materialize_range

SYMBOLS = ["AAPL", "MSFT", "NVDA"]
HISTORY_START = "2024-03-01"
NIGHTS = calendar.sessions("2025-12-24", "2026-01-08")  # across the year change
SPLIT = ("AAPL", "2025-12-30")  # 2-for-1 inside the nights
DIVIDEND = ("MSFT", "2026-01-05")
DATASETS = DATASET_ASSETS
MARKET_DATA = ["daily_bars", "corporate_actions", "fundamentals", "symbol_metadata"]


def source() -> FakeSource:
    return FakeSource(splits={SPLIT: 2.0}, dividends={DIVIDEND: 0.8})


def prepare(root: Path) -> tuple[list, dict, Path]:
    """A home whose Master DB holds the whole history up to the last night (ingested as one partition)."""
    home = root / "home"
    home.mkdir(parents=True)
    config = root / "config.json"
    write_config(config, {"universe.symbols": SYMBOLS, "history.start_date": HISTORY_START, "sources.order": ["csv"]})
    settings = load_settings(config)
    turbomode = TurboModeHome(home=str(home), config_file=str(config))
    resources = {
        "turbomode": turbomode,
        "master_db": MasterDBWriteAccess(turbomode=turbomode),
        "source_chain": SourceChain([source()]),
        "session_dataset_io_manager": SessionDatasetIOManager(root=str(home / "datasets")),
    }
    assets = [
        build_market_data_assets(settings),
        build_adjusted_prices_asset(settings),
        *build_feature_assets(settings),
    ]
    materialize_range(assets, resources, HISTORY_START, NIGHTS[-1], selection=MARKET_DATA)
    return assets, resources, home


def dataset(home: Path | str, name: str) -> pd.DataFrame:
    """The whole of dataset `name` under `home`'s datasets/ (or under a datasets URL)."""
    key = "label_date" if name == "training_samples" else "date"
    root = home / "datasets" if isinstance(home, Path) else home
    return SessionDataset(f"{root}/{name}", key=key).read()


def files(home: Path) -> dict[Path, tuple[int, int]]:
    """Every file under `home` with its size and modification time, but SQLite's -shm (the WAL index, a
    fixed-size shared-memory file every reader maps, not stored data)."""
    return {
        p: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in home.rglob("*")
        if p.is_file() and not p.name.endswith("-shm")
    }


def bytes_written(before: dict[Path, tuple[int, int]], after: dict[Path, tuple[int, int]]) -> int:
    """Bytes of the files created or rewritten between two snapshots (a rewritten file counts whole)."""
    return sum(size for path, (size, stamp) in after.items() if before.get(path) != (size, stamp))


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dg.ExecuteInProcessResult, int]:
    """One home backfilled in one run; another loaded up to the first night, then run night by night.
    Also returns the bytes the last night wrote into its home."""
    assets, resources, backfilled = prepare(tmp_path_factory.mktemp("backfill"))
    result = materialize_range(assets, resources, HISTORY_START, NIGHTS[-1])
    assets, resources, nightly = prepare(tmp_path_factory.mktemp("nightly"))
    materialize_range(assets, resources, HISTORY_START, calendar.previous_session(NIGHTS[0]))
    for night in NIGHTS:
        before = files(nightly)
        assert dg.materialize(assets, resources=resources, partition_key=night, selection=DATASET_ASSETS).success
    return backfilled, nightly, result, bytes_written(before, files(nightly))


@pytest.mark.parametrize("name", DATASETS)
def test_one_backfill_equals_night_by_night_bit_for_bit(homes, name: str) -> None:
    backfilled, nightly, _, _ = homes
    once, nights = dataset(backfilled, name), dataset(nightly, name)
    assert len(once) > 0
    pd.testing.assert_frame_equal(once, nights, check_exact=True)
    for column in once.columns:
        if once[column].dtype == object:
            assert once[column].tolist() == nights[column].tolist(), column
        else:
            assert once[column].to_numpy().tobytes() == nights[column].to_numpy().tobytes(), column


def test_the_range_crosses_a_split_a_dividend_and_a_block_boundary(homes) -> None:
    backfilled, _, _, _ = homes
    prices = dataset(backfilled, "adjusted_prices")
    aapl = prices[prices["symbol"] == "AAPL"].set_index("date")
    before, on = pd.Timestamp(calendar.previous_session(SPLIT[1])), pd.Timestamp(SPLIT[1])
    assert aapl.loc[on, "close_raw"] < 0.6 * aapl.loc[before, "close_raw"], "traded price halves at the split"
    assert aapl.loc[on, "close"] > 0.9 * aapl.loc[before, "close"], "adjusted price is continuous"
    msft = prices[prices["symbol"] == "MSFT"].set_index("date")
    assert msft.loc[pd.Timestamp(DIVIDEND[1]), "adj_factor"] > msft.loc[pd.Timestamp("2026-01-02"), "adj_factor"]
    assert block_anchor(NIGHTS[0], HISTORY_START) == HISTORY_START
    assert block_anchor(NIGHTS[-1], HISTORY_START) > HISTORY_START, "2026's block starts later than 2025's"


def test_features_are_stored_per_session_in_traded_units(homes) -> None:
    backfilled, _, result, _ = homes
    panel = dataset(backfilled, "feature_panel")
    assert list(panel.columns) == ["symbol", "date", *FEATURE_COLUMNS]
    assert set(panel["symbol"]) == set(SYMBOLS)
    assert panel["date"].min() >= pd.Timestamp(HISTORY_START) and panel["date"].max() == pd.Timestamp(NIGHTS[-1])
    prices = dataset(backfilled, "adjusted_prices").set_index(["symbol", "date"])
    last = panel[panel["date"] == panel["date"].max()].set_index(["symbol", "date"])
    # A 20-row Bollinger middle band is a mean of closes: in traded units it sits near the traded close.
    ratio = last["bb_middle_20"] / prices.loc[last.index, "close_raw"]
    assert ((ratio > 0.9) & (ratio < 1.1)).all(), ratio
    assert set(PRICE_UNIT_COLUMNS) <= set(FEATURE_COLUMNS)
    meta = {k: v.value for k, v in result.asset_materializations_for_node("feature_panel")[-1].metadata.items()}
    assert meta["backend"] == "pandas"
    assert meta["rows"] == len(panel)
    assert meta["features"] == len(FEATURE_COLUMNS)
    assert meta["bytes_written"] > 0 and meta["sessions_written"] == len(calendar.sessions(HISTORY_START, NIGHTS[-1]))


def test_training_samples_of_a_session_are_the_labels_that_matured_on_it(homes) -> None:
    backfilled, _, _, _ = homes
    samples = dataset(backfilled, "training_samples")
    prices = dataset(backfilled, "adjusted_prices")
    day = pd.Timestamp(NIGHTS[-1])
    today = samples[samples["label_date"] == day]
    assert len(today) == len(SYMBOLS)
    sessions = calendar.sessions(HISTORY_START, NIGHTS[-1])
    assert (today["date"] == pd.Timestamp(sessions[-6])).all(), "horizon 5: features of 5 sessions back"
    close = prices.set_index(["symbol", "date"])["close"]
    for row in today.itertuples():
        expected = close[(row.symbol, day)] / close[(row.symbol, row.date)] - 1.0
        assert row.fwd_return == expected
    assert set(samples["label"].unique()) <= {0, 1, 2}
    assert samples["label_date"].max() == day


def test_a_night_writes_a_bounded_number_of_bytes(homes) -> None:
    """A night rewrites its month file and session record of each dataset and nothing else (the
    storage-growth goal)."""
    _, nightly, _, written = homes
    rewritten = [f"{NIGHTS[-1][:7]}.parquet", RECORD_FILE]
    assert written == sum((nightly / "datasets" / name / f).stat().st_size for name in DATASETS for f in rewritten)
    history = sum(SessionDataset(nightly / "datasets" / name).bytes() for name in DATASETS)
    assert written < history / 10, (written, history)


def test_datasets_at_an_object_store_url_hold_what_local_ones_hold(homes, tmp_path: Path, monkeypatch) -> None:
    """TURBOMODE_DATASETS_URL at an fsspec URL (memory://, the object store stand-in): the same backfill
    stores the same rows there, bit for bit, and nothing in the home's datasets/ folder."""
    backfilled, *_ = homes
    assets, resources, home = prepare(tmp_path)
    url = f"memory://turbomode-{uuid.uuid4().hex[:12]}/datasets"
    monkeypatch.setenv("TURBOMODE_DATASETS_URL", url)
    materialize_range(
        assets, {**resources, "session_dataset_io_manager": SessionDatasetIOManager()}, HISTORY_START, NIGHTS[-1]
    )
    try:
        assert not (home / "datasets").exists()
        for name in DATASETS:
            pd.testing.assert_frame_equal(dataset(url, name), dataset(backfilled, name), check_exact=True)
    finally:
        fsspec.filesystem("memory").rm(url.removeprefix("memory://").split("/")[0], recursive=True)


def test_feature_assets_never_open_the_master_db_for_writing(homes) -> None:
    """Any read-write open of market_data.db (at sqlite3.connect itself) or any change to its bytes fails."""
    _, nightly, _, _ = homes
    assets, resources, home = prepare(nightly.parent.parent / "guarded")
    with master_db_untouched(market_db_path(home)):
        materialize_range(assets, resources, HISTORY_START, NIGHTS[-1], selection=["adjusted_prices"])
        materialize_range(assets, resources, NIGHTS[-2], NIGHTS[-1], selection=["feature_panel"])
    assert np.isfinite(dataset(home, "adjusted_prices")["close"]).all()


def test_features_refuse_a_price_panel_with_missing_sessions(tmp_path: Path) -> None:
    """Only the night's prices are stored: the features would come from a truncated block, so the run fails."""
    assets, resources, _ = prepare(tmp_path)
    night = NIGHTS[-1]
    kept = dict(partition_key=night, resources=resources)
    assert dg.materialize(assets, selection=["adjusted_prices"], **kept).success
    result = dg.materialize(assets, selection=["feature_panel"], raise_on_error=False, **kept)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.step_failure_data.error.cause.message
    anchor = block_anchor(night, HISTORY_START)
    assert (
        f"adjusted_prices has no rows for {len(calendar.sessions(anchor, night)) - 1} session(s) from {anchor}"
        in message
    )
