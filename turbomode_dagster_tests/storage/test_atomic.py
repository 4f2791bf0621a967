"""Atomic writes: a write that dies leaves the old file whole and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from turbomode_dagster.orchestration.io_managers import ParquetIOManager
from turbomode_dagster.storage.atomic import atomic_write


def _half_then_die(path: Path) -> None:
    path.write_bytes(b"PAR1 half a file")
    raise OSError("disk full (simulated)")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "models" / "manifest.json"
    atomic_write(target, lambda path: path.write_text("old"))
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, _half_then_die)
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["manifest.json"]


def test_the_temporary_keeps_the_suffix_libraries_read_the_format_from(tmp_path: Path) -> None:
    seen: list[Path] = []
    atomic_write(tmp_path / "base" / "hist.json", lambda path: seen.append(path) or path.write_text("{}"))
    assert seen[0].suffix == ".json" and seen[0].parent == tmp_path / "base" and seen[0].name.startswith(".tmp-")
    assert (tmp_path / "base" / "hist.json").read_text() == "{}"


PARTITIONS = dg.StaticPartitionsDefinition(["2026-11-25"])


def _asset(frame: pd.DataFrame):
    @dg.asset(partitions_def=PARTITIONS, io_manager_key="parquet_io_manager", name="feature_panel")
    def feature_panel() -> pd.DataFrame:
        return frame

    return feature_panel


def test_a_partition_whose_parquet_write_dies_keeps_its_previous_file(tmp_path: Path, monkeypatch) -> None:
    """pyarrow writes half a file, then the process runs out of disk: the partition is the old one, whole."""
    resources = {"parquet_io_manager": ParquetIOManager(root=str(tmp_path))}
    old = pd.DataFrame({"symbol": ["AAPL", "MSFT"], "value": [1.0, 2.0]})
    assert dg.materialize([_asset(old)], resources=resources, partition_key="2026-11-25").success
    path = tmp_path / "feature_panel" / "2026-11-25.parquet"

    write_table = pq.write_table

    def write_half(table, where, *args, **kwargs):
        write_table(table.slice(0, 1), where, *args, **kwargs)
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(pq, "write_table", write_half)
    new = pd.DataFrame({"symbol": ["AAPL", "MSFT", "NVDA"], "value": [9.0, 9.0, 9.0]})
    result = dg.materialize([_asset(new)], resources=resources, partition_key="2026-11-25", raise_on_error=False)
    assert not result.success
    monkeypatch.setattr(pq, "write_table", write_table)
    pd.testing.assert_frame_equal(pd.read_parquet(path), old)
    assert sorted(p.name for p in path.parent.iterdir()) == ["2026-11-25.parquet"]
