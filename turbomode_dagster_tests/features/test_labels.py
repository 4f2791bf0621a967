"""Labels: forward returns within a symbol, inclusive thresholds, unlabelled history end, the training join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.features import compute_features, make_labels, training_samples
from turbomode_dagster.features.labels import BUY, HOLD, SELL
from turbomode_dagster_tests.features.test_panel import make_bars


def closes(series: dict[str, list[float]]) -> pd.DataFrame:
    """Bars with the given closes per symbol on consecutive business days (other prices follow close)."""
    frames = []
    for symbol, values in series.items():
        close = np.asarray(values, dtype=float)
        dates = pd.bdate_range("2024-01-01", periods=len(close))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": dates,
                    "open": close,
                    "high": close,
                    "low": close,
                    "close": close,
                    "volume": 1e6,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).iloc[::-1]  # any row order


def test_forward_return_stays_within_the_symbol_and_the_last_horizon_rows_are_unlabelled():
    bars = make_bars({"A": (0, 50, 10.0), "B": (5, 30, 500.0)})
    labels = make_labels(bars, horizon=5)
    assert list(labels.columns) == ["symbol", "date", "fwd_return", "label"]
    assert str(labels["label"].dtype) == "Int8"
    for symbol, group in labels.groupby("symbol"):
        close = bars[bars["symbol"] == symbol].sort_values("date")["close"].to_numpy()
        np.testing.assert_allclose(group["fwd_return"].iloc[:-5], close[5:] / close[:-5] - 1, rtol=1e-12)
        assert group["fwd_return"].iloc[-5:].isna().all()  # A's tail does not reach into B's bars
        assert group["label"].iloc[-5:].isna().all()
        assert group["label"].iloc[:-5].notna().all()


def test_thresholds_are_inclusive():
    bars = closes({"X": [100, 125, 75, 100, 124, 100]})
    labels = make_labels(bars, horizon=1, sell_threshold=-0.25, buy_threshold=0.25)
    # 100->125 is exactly +25 % (BUY), 125->75 -40 % (SELL), 75->100 +33 % (BUY),
    # 100->124 +24 % (HOLD), 124->100 -19.4 % (HOLD), last bar unlabelled
    assert labels["label"].tolist() == [BUY, SELL, BUY, HOLD, HOLD, pd.NA]
    exact_sell = make_labels(closes({"Y": [100, 75]}), horizon=1, sell_threshold=-0.25, buy_threshold=0.25)
    assert exact_sell["label"].iloc[0] == SELL


def test_short_history_is_entirely_unlabelled():
    labels = make_labels(closes({"NEW": [10, 11, 12]}), horizon=5)
    assert labels["fwd_return"].isna().all() and labels["label"].isna().all()


def test_bad_arguments_are_refused():
    bars = closes({"X": [1, 2, 3]})
    with pytest.raises(ValueError, match="horizon"):
        make_labels(bars, horizon=0)
    with pytest.raises(ValueError, match="below"):
        make_labels(bars, sell_threshold=0.1, buy_threshold=0.05)


def test_training_samples_keep_only_labelled_rows():
    bars = make_bars({"A": (0, 40, 10.0), "B": (3, 25, 30.0)})
    features = compute_features(bars)
    labels = make_labels(bars, horizon=5)
    samples = training_samples(features, labels)
    assert list(samples.columns) == [*features.columns, "fwd_return", "label"]
    assert len(samples) == len(features) - 2 * 5
    assert samples["label"].dtype == np.int8 and samples["fwd_return"].notna().all()
    last_labelled = labels.dropna(subset=["label"]).groupby("symbol")["date"].max()
    pd.testing.assert_series_equal(samples.groupby("symbol")["date"].max(), last_labelled)
