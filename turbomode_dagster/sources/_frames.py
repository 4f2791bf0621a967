"""Frame helpers shared by the Yahoo and IBKR sources: typed bar frames and safe concatenation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from turbomode_dagster.sources.base import BAR_COLUMNS, empty_frame

PRICE_COLUMNS = ["open", "high", "low", "close"]
# US equities trade in cents (1/100 cent under $1): four decimals hold every traded price and drop
# the float32 noise Yahoo's chart API carries.
PRICE_DECIMALS = 4


def bars_frame(symbol: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Bars with `BAR_COLUMNS` from `rows` (date, open, high, low, close, volume); rows without a close drop.

    Volumes are whole int64 when every one fits; otherwise they stay floats so validation can name the bad ones.
    """
    frame = rows.dropna(subset=["close"]).copy()
    frame["symbol"] = symbol
    frame["date"] = frame["date"].astype(str)
    for column in PRICE_COLUMNS:
        frame[column] = frame[column].astype(float).round(PRICE_DECIMALS)
    volume = frame["volume"].astype(float).fillna(0).round()
    # An infinite or 64-bit-overflowing volume stays a float for validation to quarantine, never wraps here.
    fits = bool((np.isfinite(volume) & (volume.abs() < 2**63)).all())
    frame["volume"] = volume.astype(np.int64) if fits else volume
    return frame[BAR_COLUMNS].reset_index(drop=True)


def concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The non-empty `frames` stacked with exactly `columns`; an empty frame with them when none."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_frame(columns)
    return pd.concat(frames, ignore_index=True)[columns]
