"""Per-symbol time-series features on a block of the panel: TA-Lib's indicators and the scale-free ratios.

The TA-Lib-named columns (rsi_*, macd*, atr_14, bb_*_20) follow TA-Lib's definitions and units and
match it after its own warm-up, NaN where TA-Lib returns NaN: RSI and ATR use Wilder smoothing
seeded with the mean of the first `period` changes / true ranges; MACD's 26- and 12-period EMAs are
both seeded at row 25 (the fast one from the mean of rows 14..25, as TA-Lib aligns them) and all
three MACD outputs start at row 33; BBANDS is a 20-row SMA ± 2 population standard deviations.

The other columns are ratios a model can compare across symbols and years. Returns are log returns
ln(close_t / close_{t-k}) over k rows; realized volatility is the sample (ddof=1) standard
deviation of daily log returns over the window, annualised with sqrt(252); close_to_sma_w is
close / SMA_w - 1; dist_52w_high / _low are close over the highest high / lowest low of the last
252 rows, minus 1; volume_to_avg_20 is volume over its 20-row mean (today included); the candle
ratios divide body and wicks by the day's high - low range (NaN when high == low).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from turbomode_dagster.features.backend import load_engine, resolve_backend
from turbomode_dagster.features.panel import Block, Layout, Sheet

TALIB_SUBSET = (
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "atr_14",
    "bb_upper_20",
    "bb_middle_20",
    "bb_lower_20",
)
# Every TA-Lib-defined column: the benchmarked subset (which opens with rsi_14) plus RSI over 7 and 21.
TALIB_COLUMNS = ("rsi_7", TALIB_SUBSET[0], "rsi_21", *TALIB_SUBSET[1:])
RETURN_HORIZONS = (1, 5, 10, 20, 60)
SMA_WINDOWS = (5, 10, 20, 50, 100, 200)
VOL_WINDOWS = (10, 20, 60)
RATIO_COLUMNS = (
    *(f"ret_{k}d" for k in RETURN_HORIZONS),
    *(f"close_to_sma_{w}" for w in SMA_WINDOWS),
    "macd_to_close",
    "macd_hist_to_close",
    "bb_pct_b_20",
    "bb_width_20",
    "atr_14_to_close",
    *(f"realized_vol_{w}" for w in VOL_WINDOWS),
    "volume_to_avg_20",
    "dist_52w_high",
    "dist_52w_low",
    "body_to_range",
    "upper_wick_to_range",
    "lower_wick_to_range",
    "range_to_close",
)
TRADING_DAYS = 252


def rsi(block: Block, close: Any, period: int) -> Any:
    """TA-Lib RSI: Wilder-smoothed gains over gains + losses, in 0..100, first value at row `period`."""
    xp = block.xp
    change = close - block.lag(close, 1)
    gain = block.smooth(xp.maximum(change, 0.0), 1.0 / period, period, period)
    loss = block.smooth(xp.maximum(-change, 0.0), 1.0 / period, period, period)
    total = gain + loss
    return xp.where(total == 0.0, 0.0, 100.0 * gain / total)  # TA-Lib: 0 when nothing moved


def macd(block: Block, close: Any, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Any, Any, Any]:
    """TA-Lib MACD (line, signal, histogram); both EMAs start at row slow-1, outputs at slow+signal-2."""
    start = slow - 1
    line = block.smooth(close, 2.0 / (fast + 1), fast, start) - block.smooth(close, 2.0 / (slow + 1), slow, start)
    first = start + signal - 1
    trigger = block.smooth(line, 2.0 / (signal + 1), signal, first)
    line[:, :first] = np.nan
    return line, trigger, line - trigger


def atr(block: Block, high: Any, low: Any, close: Any, period: int = 14) -> Any:
    """TA-Lib ATR: Wilder-smoothed true range seeded with the mean TR of rows 1..period."""
    xp = block.xp
    previous = block.lag(close, 1)
    true_range = xp.maximum(high - low, xp.maximum(xp.abs(high - previous), xp.abs(low - previous)))
    return block.smooth(true_range, 1.0 / period, period, period)


def bbands(block: Block, close: Any, period: int = 20, deviations: float = 2.0) -> tuple[Any, Any, Any]:
    """TA-Lib BBANDS: SMA middle band ± `deviations` population standard deviations.

    A window whose closes are all equal has exactly zero width, as in TA-Lib, rather than the
    rounding noise of the running sums.
    """
    xp = block.xp
    middle, variance = block.rolling_mean_var(close, period, ddof=0)
    moves = block.rolling_sum((close != block.lag(close, 1)).astype(xp.float64), period - 1)
    spread = deviations * xp.where(moves == 0.0, 0.0, xp.sqrt(xp.maximum(variance, 0.0)))
    return middle + spread, middle, middle - spread


def log_return(block: Block, close: Any, rows: int) -> Any:
    """ln(close_t / close_{t-rows}) within the symbol; NaN for its first `rows` bars."""
    return block.xp.log(close / block.lag(close, rows))


def talib_subset(block: Block, high: Any, low: Any, close: Any) -> dict[str, Any]:
    """RSI14, MACD 12/26/9, ATR14 and BBANDS20 as symbol × row matrices keyed by column name."""
    line, trigger, histogram = macd(block, close)
    upper, middle, lower = bbands(block, close)
    return {
        "rsi_14": rsi(block, close, 14),
        "macd": line,
        "macd_signal": trigger,
        "macd_hist": histogram,
        "atr_14": atr(block, high, low, close),
        "bb_upper_20": upper,
        "bb_middle_20": middle,
        "bb_lower_20": lower,
    }


def time_series_features(block: Block) -> Iterator[tuple[str, Any]]:
    """Every per-symbol column (TALIB_COLUMNS and RATIO_COLUMNS) as (name, symbol × row matrix)."""
    xp = block.xp
    open_, high, low, close, volume = (block.matrix(n) for n in ("open", "high", "low", "close", "volume"))
    named = talib_subset(block, high, low, close)
    yield from named.items()
    yield "rsi_7", rsi(block, close, 7)
    yield "rsi_21", rsi(block, close, 21)
    for rows in RETURN_HORIZONS:
        yield f"ret_{rows}d", log_return(block, close, rows)
    for window in SMA_WINDOWS:
        yield f"close_to_sma_{window}", close / block.rolling_mean(close, window) - 1.0
    yield "macd_to_close", named["macd"] / close
    yield "macd_hist_to_close", named["macd_hist"] / close
    band = named["bb_upper_20"] - named["bb_lower_20"]
    yield "bb_pct_b_20", (close - named["bb_lower_20"]) / band
    yield "bb_width_20", band / named["bb_middle_20"]
    yield "atr_14_to_close", named["atr_14"] / close
    daily = log_return(block, close, 1)
    for window in VOL_WINDOWS:
        yield f"realized_vol_{window}", block.rolling_std(daily, window, ddof=1) * np.sqrt(TRADING_DAYS)
    yield "volume_to_avg_20", volume / block.rolling_mean(volume, 20)
    yield "dist_52w_high", close / block.rolling_max(high, TRADING_DAYS) - 1.0
    yield "dist_52w_low", close / block.rolling_min(low, TRADING_DAYS) - 1.0
    span = high - low
    yield "body_to_range", (close - open_) / span
    yield "upper_wick_to_range", (high - xp.maximum(open_, close)) / span
    yield "lower_wick_to_range", (xp.minimum(open_, close) - low) / span
    yield "range_to_close", span / close


def talib_indicators(bars: pd.DataFrame, backend: str = "pandas") -> pd.DataFrame:
    """Only the TA-Lib-named indicators (TALIB_SUBSET) over the whole panel: symbol, date, then them.

    The same code compute_features runs, exposed so it can be timed against a per-symbol TA-Lib loop.
    """
    prices = ("high", "low", "close")
    layout = Layout(bars, load_engine(resolve_backend(backend)[0]), prices)
    sheet = Sheet(layout, [(TALIB_SUBSET, np.float64)])
    with np.errstate(divide="ignore", invalid="ignore"):
        for block in layout.blocks():
            for name, matrix in talib_subset(block, *(block.matrix(n) for n in prices)).items():
                sheet.put(name, block.long(matrix), block.rows)
    return sheet.frame(layout.keys())
