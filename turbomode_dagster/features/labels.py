"""Training labels: each bar's forward return over the next `horizon` trading rows, bucketed SELL/HOLD/BUY.

The forward return is the simple close-to-close return from the bar's close to the close `horizon`
rows later for the same symbol (adjusted closes, so splits and dividends do not fake a move). A bar
whose window runs past the symbol's last bar has no forward return and no label, and
`training_samples` drops it: it must never be trained on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from turbomode_dagster.features.backend import load_engine
from turbomode_dagster.features.panel import Layout

SELL, HOLD, BUY = 0, 1, 2


def make_labels(
    bars: pd.DataFrame, horizon: int = 5, sell_threshold: float = -0.05, buy_threshold: float = 0.05
) -> pd.DataFrame:
    """symbol, date, fwd_return, label (nullable Int8) per bar, sorted by symbol and date.

    label is SELL (0) when fwd_return <= sell_threshold, BUY (2) when fwd_return >= buy_threshold
    (both inclusive), else HOLD (1); missing where fwd_return is NaN (the last `horizon` bars).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least one trading row, got {horizon}")
    if not sell_threshold < buy_threshold:
        raise ValueError(f"sell_threshold {sell_threshold} must be below buy_threshold {buy_threshold}")
    layout = Layout(bars, load_engine("pandas"), ("close",))
    close = layout.column("close")
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = layout.lag(close, -horizon) / close - 1.0
    label = np.select([forward <= sell_threshold, forward >= buy_threshold], [SELL, BUY], HOLD)
    frame = layout.keys()
    frame["fwd_return"] = forward
    frame["label"] = pd.array(label, dtype="Int8")
    frame.loc[np.isnan(forward), "label"] = pd.NA
    return frame


def training_samples(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Features joined with fwd_return and label on (symbol, date), keeping only labelled rows.

    The label comes back as int8 (no missing values remain); rows are in (symbol, date) order.
    """
    joined = features.merge(
        labels.loc[:, ["symbol", "date", "fwd_return", "label"]],
        on=["symbol", "date"],
        how="inner",
        validate="one_to_one",
    )
    joined = joined[joined["label"].notna()]
    joined = joined.astype({"label": "int8"})
    return joined.sort_values(["symbol", "date"], kind="stable", ignore_index=True)
