"""Data-quality measures behind the market-data asset checks (pure functions, no Dagster)."""

from __future__ import annotations

import numpy as np
import pandas as pd

JUMP_LIMIT = 0.6  # |log close-to-close move| above this (-45% / +82%) is a jump unless a split explains it


def missing_symbols(bars_on_day: pd.DataFrame, universe: list[str]) -> list[str]:
    """Universe symbols with no stored bar on the day."""
    present = set(bars_on_day["symbol"])
    return [s for s in universe if s not in present]


def unexplained_jumps(bars: pd.DataFrame, splits: pd.DataFrame, since: str) -> pd.DataFrame:
    """Close-to-close moves on or after `since` larger than JUMP_LIMIT once the day's split is undone.

    `bars` is as traded (symbol, date, close) and should include each symbol's bar before `since`.
    A 4:1 split shows as a 75% drop in traded prices; multiplied back by its ratio it is no jump.
    """
    frame = bars.sort_values(["symbol", "date"])[["symbol", "date", "close"]].copy()
    frame["previous_close"] = frame.groupby("symbol")["close"].shift(1)
    ratio = frame.merge(splits[["symbol", "date", "ratio"]], on=["symbol", "date"], how="left")["ratio"]
    frame["split_ratio"] = pd.to_numeric(ratio).fillna(1.0).to_numpy()
    frame["move"] = np.log(frame["close"] * frame["split_ratio"] / frame["previous_close"])
    jumps = frame[(frame["date"] >= since) & (frame["move"].abs() > JUMP_LIMIT)]
    return jumps.reset_index(drop=True)
