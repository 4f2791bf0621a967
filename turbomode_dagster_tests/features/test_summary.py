"""Feature and label summaries for the asset pages, and the class-balance picture."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.features.chart import class_balance_png
from turbomode_dagster.features.summary import class_shares, feature_summary, missing_values


def test_class_shares_name_every_class() -> None:
    samples = pd.DataFrame({"label": [2, 2, 1, 2]})
    assert class_shares(samples) == {"SELL": 0.0, "HOLD": 0.25, "BUY": 0.75}


def test_feature_summary_is_one_row_per_feature_to_four_significant_digits() -> None:
    frame = pd.DataFrame(
        {
            "symbol": ["A", "B", "C"],
            "date": pd.to_datetime(["2026-11-25"] * 3),
            "rsi_14": [30.0, 50.123456, 70.0],
            "volume_20": [1_234_567.0, 2_000_000.0, np.nan],
            "sma_200": [np.nan, np.nan, np.nan],
        }
    )
    summary = feature_summary(frame)
    assert list(summary.columns) == ["feature", "min", "median", "max"]
    assert list(summary["feature"]) == ["rsi_14", "volume_20", "sma_200"]
    assert summary.iloc[0, 1:].tolist() == [30.0, 50.12, 70.0]
    assert summary.iloc[1, 1:].tolist() == [1_235_000.0, 1_617_000.0, 2_000_000.0]
    assert all(math.isnan(v) for v in summary.iloc[2, 1:])
    assert missing_values(frame) == 4


def test_the_class_balance_picture_is_a_png() -> None:
    dates = pd.bdate_range("2026-01-01", periods=120)
    samples = pd.DataFrame({"date": dates, "label": np.arange(120) % 3})
    png = class_balance_png(samples, "label shares per month")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2_000
    with pytest.raises(ValueError, match="no training samples"):
        class_balance_png(samples.iloc[0:0], "empty")
