"""Indicator values: TA-Lib parity on the TA-Lib-named columns, independent pandas references for the ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from turbomode_dagster.features import compute_features, talib_indicators
from turbomode_dagster.features.indicators import TALIB_SUBSET
from turbomode_dagster_tests.features.test_panel import SESSIONS, make_bars

SPEC = {
    "AAA": (0, 420, 40.0),
    "BIG": (20, 400, 25_000.0),  # high price: stresses the running sums behind BBANDS
    "LATE": (300, 120, 8.0),
    "SHORT": (10, 30, 15.0),  # MACD never warms up
    "TINY": (0, 12, 3.0),  # nothing warms up
    "FLAT": (0, 420, 10.0),  # no change at all for its first 40 bars and from bar 100 to 379
}


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """A shuffled multi-symbol panel of different lengths, one with a long flat (no-change) stretch."""
    frame = make_bars(SPEC, seed=5)
    flat = (frame["symbol"] == "FLAT") & frame["date"].isin(SESSIONS[:40].union(SESSIONS[100:380]))
    frame.loc[flat, ["open", "high", "low", "close"]] = 10.0
    return frame


@pytest.fixture(scope="module")
def features(bars: pd.DataFrame) -> pd.DataFrame:
    """compute_features over the panel."""
    return compute_features(bars)


def talib_reference(symbol_bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """TA-Lib's own output for one symbol's date-ordered bars, under our column names."""
    high, low, close = (symbol_bars[c].to_numpy(dtype=float) for c in ("high", "low", "close"))
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    return {
        "rsi_7": talib.RSI(close, 7),
        "rsi_14": talib.RSI(close, 14),
        "rsi_21": talib.RSI(close, 21),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "atr_14": talib.ATR(high, low, close, 14),
        "bb_upper_20": upper,
        "bb_middle_20": middle,
        "bb_lower_20": lower,
    }


@pytest.mark.parametrize("symbol", list(SPEC))
def test_talib_named_columns_match_talib(bars: pd.DataFrame, features: pd.DataFrame, symbol: str):
    ours = features[features["symbol"] == symbol]
    reference = talib_reference(bars[bars["symbol"] == symbol].sort_values("date"))
    for column, expected in reference.items():
        got = ours[column].to_numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{symbol} {column} NaN positions")
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-10, err_msg=f"{symbol} {column}")
    if symbol in ("AAA", "BIG", "FLAT"):
        assert np.isfinite(ours["macd_signal"]).sum() > 100  # parity was checked on real values


def test_flat_stretches_follow_talib(features: pd.DataFrame):
    """Nothing moved yet: RSI 0. Flat after moves: RSI keeps its ratio. Flat window: zero band width."""
    flat = features[features["symbol"] == "FLAT"].reset_index(drop=True)
    assert (flat.loc[7:39, "rsi_7"] == 0).all()
    np.testing.assert_allclose(flat.loc[150:379, "rsi_7"], flat.loc[150, "rsi_7"], rtol=1e-9)
    assert flat.loc[150, "rsi_7"] > 0
    assert (flat.loc[119:379, "bb_upper_20"] == flat.loc[119:379, "bb_lower_20"]).all()
    assert (flat.loc[380:, "bb_upper_20"] > flat.loc[380:, "bb_lower_20"]).all()


def test_talib_subset_is_the_same_computation(bars: pd.DataFrame, features: pd.DataFrame):
    subset = talib_indicators(bars)
    assert list(subset.columns) == ["symbol", "date", *TALIB_SUBSET]
    pd.testing.assert_frame_equal(subset, features[list(subset.columns)], check_exact=True)


def _grouped(bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.core.groupby.DataFrameGroupBy]:
    """Date-ordered bars and their per-symbol groupby, the independent pandas reference."""
    ordered = bars.sort_values(["symbol", "date"], ignore_index=True)
    return ordered, ordered.groupby("symbol")


def test_returns_trend_and_volatility_match_a_pandas_reference(bars: pd.DataFrame, features: pd.DataFrame):
    ordered, by_symbol = _grouped(bars)
    close = ordered["close"]
    for rows in (1, 5, 10, 20, 60):
        expected = np.log(close / by_symbol["close"].shift(rows))
        np.testing.assert_allclose(features[f"ret_{rows}d"], expected, rtol=1e-5, atol=1e-7)
    for window in (5, 10, 20, 50, 100, 200):
        sma = by_symbol["close"].rolling(window).mean().reset_index(level=0, drop=True)
        np.testing.assert_allclose(features[f"close_to_sma_{window}"], close / sma - 1, rtol=1e-5, atol=1e-7)
    daily = np.log(close / by_symbol["close"].shift(1))
    for window in (10, 20, 60):
        vol = daily.groupby(ordered["symbol"]).rolling(window).std(ddof=1).reset_index(level=0, drop=True)
        np.testing.assert_allclose(features[f"realized_vol_{window}"], vol * np.sqrt(252), rtol=1e-4, atol=1e-7)
    volume_avg = by_symbol["volume"].rolling(20).mean().reset_index(level=0, drop=True)
    np.testing.assert_allclose(features["volume_to_avg_20"], ordered["volume"] / volume_avg, rtol=1e-5)
    high52 = by_symbol["high"].rolling(252).max().reset_index(level=0, drop=True)
    low52 = by_symbol["low"].rolling(252).min().reset_index(level=0, drop=True)
    np.testing.assert_allclose(features["dist_52w_high"], close / high52 - 1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(features["dist_52w_low"], close / low52 - 1, rtol=1e-5, atol=1e-7)
    assert features["dist_52w_high"].notna().sum() > 300


def test_ratios_of_talib_columns_and_candles(features: pd.DataFrame, bars: pd.DataFrame):
    ordered, _ = _grouped(bars)
    close, open_, high, low = (ordered[c] for c in ("close", "open", "high", "low"))
    f = features
    np.testing.assert_allclose(f["macd_hist_to_close"], f["macd_hist"] / close, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(f["macd_to_close"], f["macd"] / close, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(f["atr_14_to_close"], f["atr_14"] / close, rtol=1e-5)
    band = f["bb_upper_20"] - f["bb_lower_20"]
    np.testing.assert_allclose(f["bb_pct_b_20"], ((close - f["bb_lower_20"]) / band).where(band > 0), rtol=1e-4)
    np.testing.assert_allclose(f["bb_width_20"], band / f["bb_middle_20"], rtol=1e-5, atol=1e-9)
    span = high - low
    np.testing.assert_allclose(f["body_to_range"], ((close - open_) / span).where(span > 0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        f["upper_wick_to_range"], ((high - np.maximum(open_, close)) / span).where(span > 0), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        f["lower_wick_to_range"], ((np.minimum(open_, close) - low) / span).where(span > 0), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(f["range_to_close"], span / close, rtol=1e-5)
    candles = f[span.to_numpy() > 0]
    total = candles["upper_wick_to_range"] + candles["lower_wick_to_range"] + candles["body_to_range"].abs()
    np.testing.assert_allclose(total, 1.0, rtol=1e-5)
