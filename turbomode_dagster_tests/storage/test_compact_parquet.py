"""Compact per-night Parquet: smaller than pandas' default, and the same frame, dtypes included, read back."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from turbomode_dagster.orchestration.io_managers import ParquetIOManager
from turbomode_dagster.storage.compact_parquet import float_columns, write_compact_parquet


def oof_like(rows: int = 20_000) -> pd.DataFrame:
    """An out-of-fold predictions frame: symbol, date, model, int8 fold, float32 probabilities summing to 1."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet([2.0, 3.0, 2.0], rows).astype(np.float32)
    return pd.DataFrame(
        {
            "symbol": rng.choice(["AAPL", "MSFT", "KO"], rows),
            "date": pd.Timestamp("2020-01-02") + pd.to_timedelta(rng.integers(0, 2000, rows), unit="D"),
            "model": rng.choice(["xgb_hist", "ensemble"], rows),
            "fold": rng.integers(0, 5, rows).astype(np.int8),
            "p_sell": p[:, 0],
            "p_hold": p[:, 1],
            "p_buy": p[:, 2],
        }
    )


def test_compact_file_reads_back_identical_and_smaller(tmp_path: Path) -> None:
    frame = oof_like()
    write_compact_parquet(frame, tmp_path / "compact.parquet")
    frame.to_parquet(tmp_path / "default.parquet", index=False)
    back = pd.read_parquet(tmp_path / "compact.parquet")
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert (tmp_path / "compact.parquet").stat().st_size < 0.8 * (tmp_path / "default.parquet").stat().st_size


def test_frames_without_floats_or_without_text_are_written() -> None:
    assert float_columns(oof_like(10)) == ["p_sell", "p_hold", "p_buy"]
    assert float_columns(pd.DataFrame({"n": [1, 2]})) == []


def test_io_manager_round_trip_gives_the_identical_frame(tmp_path: Path) -> None:
    """What the backtest loads is bit for bit what training returned (NaNs and float64 columns too)."""
    frame = oof_like().assign(score=lambda f: f["p_buy"].astype(np.float64) - f["p_sell"])
    frame.loc[::97, "score"] = np.nan
    manager = ParquetIOManager(root=str(tmp_path))
    key = dg.AssetKey("oof_predictions")
    manager.handle_output(dg.build_output_context(asset_key=key, partition_key="2026-11-25"), frame)
    upstream = dg.build_output_context(asset_key=key, partition_key="2026-11-25")
    back = manager.load_input(dg.build_input_context(upstream_output=upstream, partition_key="2026-11-25"))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert (tmp_path / "oof_predictions" / "2026-11-25.parquet").exists()
