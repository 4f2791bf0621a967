"""The Parquet IO manager on universal_pathlib: the same frames on local disk and on an fsspec URL (`memory://`).

Every test runs in a fresh working directory and checks that no `memory:` folder appeared there: a `root`
taken for a local path would write `memory://b/assets` to `./memory:/b/assets`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import fsspec
import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from turbomode_dagster.config import TaskId, load_settings
from turbomode_dagster.console import print_summary
from turbomode_dagster.orchestration.io_managers import ParquetIOManager

KEY = dg.AssetKey(["models", "oof_predictions"])
DAY = "2026-11-25"
PARTITIONS = dg.StaticPartitionsDefinition([DAY])


@pytest.fixture(autouse=True)
def _no_local_url_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in an empty folder and check afterwards that no URL was written there as a local path."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield
    assert list(cwd.iterdir()) == []
    assert not (tmp_path / "memory:").exists()


@pytest.fixture
def bucket() -> Iterator[str]:
    """A fresh bucket name in fsspec's process-wide memory filesystem, removed afterwards."""
    name = f"turbomode-{uuid.uuid4().hex[:12]}"
    yield name
    memory = fsspec.filesystem("memory")
    if memory.exists(f"/{name}"):
        memory.rm(f"/{name}", recursive=True)


def objects(bucket: str) -> list[str]:
    """Every object (file) the memory filesystem holds in `bucket`."""
    return sorted(key for key in MemoryFileSystem.store if key.startswith(f"/{bucket}/"))


def frame() -> pd.DataFrame:
    """A small out-of-fold-like frame: text, dates, int8, float32 and a float64 with NaNs."""
    rng = np.random.default_rng(7)
    rows = 500
    out = pd.DataFrame(
        {
            "symbol": rng.choice(["AAPL", "MSFT", "NVDA"], rows),
            "date": pd.Timestamp("2026-01-02") + pd.to_timedelta(rng.integers(0, 300, rows), unit="D"),
            "fold": rng.integers(0, 5, rows).astype(np.int8),
            "p_buy": rng.random(rows).astype(np.float32),
            "score": rng.normal(size=rows),
        }
    )
    out.loc[::13, "score"] = np.nan
    return out


def write_and_read(manager: ParquetIOManager, data: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """handle_output then load_input of `KEY` for DAY; the frame read back and the output metadata."""
    out = dg.build_output_context(asset_key=KEY, partition_key=DAY)
    manager.handle_output(out, data)
    metadata = out.get_logged_metadata()
    upstream = dg.build_output_context(asset_key=KEY, partition_key=DAY)
    back = manager.load_input(dg.build_input_context(upstream_output=upstream, partition_key=DAY))
    return back, metadata


def test_memory_url_round_trip_writes_one_object_at_the_key(bucket: str) -> None:
    data = frame()
    back, metadata = write_and_read(ParquetIOManager(root=f"memory://{bucket}/assets"), data)
    pd.testing.assert_frame_equal(back, data, check_exact=True)
    key = f"/{bucket}/assets/models/oof_predictions/{DAY}.parquet"
    assert objects(bucket) == [key]
    assert metadata["path"].path == f"memory://{bucket}/assets/models/oof_predictions/{DAY}.parquet"
    assert metadata["bytes"].value == fsspec.filesystem("memory").size(key) > 0


def test_local_round_trip_gives_the_same_frame_and_leaves_no_temporary(bucket: str, tmp_path: Path) -> None:
    data = frame()
    root = tmp_path / "assets"
    back, metadata = write_and_read(ParquetIOManager(root=str(root)), data)
    pd.testing.assert_frame_equal(back, data, check_exact=True)
    target = root / "models" / "oof_predictions" / f"{DAY}.parquet"
    assert sorted(p for p in root.rglob("*") if p.is_file()) == [target]
    assert metadata["path"].path == str(target)
    assert metadata["bytes"].value == target.stat().st_size
    remote, _ = write_and_read(ParquetIOManager(root=f"memory://{bucket}/assets"), data)
    pd.testing.assert_frame_equal(remote, back, check_exact=True)
    assert fsspec.filesystem("memory").cat(objects(bucket)[0]) == target.read_bytes()


def test_a_file_url_is_written_locally(tmp_path: Path) -> None:
    data = frame()
    back, metadata = write_and_read(ParquetIOManager(root=(tmp_path / "assets").as_uri()), data)
    pd.testing.assert_frame_equal(back, data, check_exact=True)
    assert metadata["path"].path == str(tmp_path / "assets" / "models" / "oof_predictions" / f"{DAY}.parquet")


def test_a_missing_partition_names_the_asset_the_partition_and_what_to_run(bucket: str) -> None:
    manager = ParquetIOManager(root=f"memory://{bucket}/assets")
    upstream = dg.build_output_context(asset_key=KEY, partition_key=DAY)
    with pytest.raises(FileNotFoundError) as caught:
        manager.load_input(dg.build_input_context(upstream_output=upstream, partition_key=DAY))
    message = str(caught.value)
    assert f"memory://{bucket}/assets/models/oof_predictions/{DAY}.parquet does not exist" in message
    assert f"materialise models/oof_predictions for {DAY} first" in message


def test_assets_url_routes_writes_when_root_is_empty(bucket: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURBOMODE_ASSETS_URL", f"memory://{bucket}/nightly")
    data = frame()
    back, _ = write_and_read(ParquetIOManager(), data)
    pd.testing.assert_frame_equal(back, data, check_exact=True)
    assert objects(bucket) == [f"/{bucket}/nightly/models/oof_predictions/{DAY}.parquet"]
    assert not (home / "assets").exists()


def test_root_wins_over_the_url_and_the_default_is_home_assets(
    bucket: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = frame()
    write_and_read(ParquetIOManager(), data)
    assert (home / "assets" / "models" / "oof_predictions" / f"{DAY}.parquet").is_file()
    monkeypatch.setenv("TURBOMODE_ASSETS_URL", f"memory://{bucket}/nightly")
    write_and_read(ParquetIOManager(root=f"memory://{bucket}/configured"), data)
    assert objects(bucket) == [f"/{bucket}/configured/models/oof_predictions/{DAY}.parquet"]


def test_materialize_two_assets_through_a_memory_url(bucket: str) -> None:
    @dg.asset(partitions_def=PARTITIONS, io_manager_key="parquet_io_manager", key_prefix="models")
    def metrics() -> pd.DataFrame:
        return pd.DataFrame({"model": ["xgb_hist", "ensemble"], "accuracy": [0.51, 0.53]})

    @dg.asset(partitions_def=PARTITIONS, io_manager_key="parquet_io_manager", key_prefix="models")
    def best(metrics: pd.DataFrame) -> pd.DataFrame:
        return metrics.nlargest(1, "accuracy").reset_index(drop=True)

    resources = {"parquet_io_manager": ParquetIOManager(root=f"memory://{bucket}/assets")}
    result = dg.materialize([metrics, best], resources=resources, partition_key=DAY)
    assert result.success
    assert objects(bucket) == [
        f"/{bucket}/assets/models/best/{DAY}.parquet",
        f"/{bucket}/assets/models/metrics/{DAY}.parquet",
    ]
    with fsspec.open(f"memory://{bucket}/assets/models/best/{DAY}.parquet", "rb") as file:
        pd.testing.assert_frame_equal(pd.read_parquet(file), pd.DataFrame({"model": ["ensemble"], "accuracy": [0.53]}))
    (materialization,) = result.asset_materializations_for_node("models__best")
    assert materialization.metadata["path"].path == f"memory://{bucket}/assets/models/best/{DAY}.parquet"


def test_the_nightly_summary_names_where_the_out_of_fold_predictions_went(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TURBOMODE_ASSETS_URL", "memory://bucket/assets")
    settings = load_settings()
    print_summary(
        settings,
        DAY,
        tmp_path,
        [(settings.task(TaskId.INGESTION), True, 1.0), (settings.task(TaskId.ORCHESTRATOR), True, 1.0)],
    )
    assert "OOF predictions: memory://bucket/assets/; models: " in capsys.readouterr().out


@pytest.mark.parametrize("where", ["memory", "local"])
def test_an_input_reads_only_its_columns_and_its_text_columns_as_categoricals(
    where: str, bucket: str, tmp_path: Path
) -> None:
    """The backtest's input metadata (`columns`, `categorical`): what it reads from 52 M rows at 3,000 symbols."""
    manager = ParquetIOManager(root=f"memory://{bucket}/assets" if where == "memory" else str(tmp_path / "assets"))
    data = frame()
    manager.handle_output(dg.build_output_context(asset_key=KEY, partition_key=DAY), data)
    upstream = dg.build_output_context(asset_key=KEY, partition_key=DAY)
    wanted = {"columns": ["symbol", "date", "p_buy"], "categorical": ["symbol"]}
    context = dg.build_input_context(upstream_output=upstream, partition_key=DAY, definition_metadata=wanted)
    back = manager.load_input(context)
    assert list(back.columns) == ["symbol", "date", "p_buy"]
    assert isinstance(back["symbol"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(back.astype({"symbol": object}), data[["symbol", "date", "p_buy"]])
