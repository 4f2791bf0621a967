"""What the strategy is measured against, as target weights for the same engine, sessions and costs.

A buy-and-hold benchmark states its weights on the first session only (rows absent afterwards mean
no order), so after the opening purchase it never rebalances and pays costs once.
"""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.backtest.strategy import WEIGHT_COLUMNS

EQUAL_WEIGHT = "equal_weight"


def equal_weight_buy_and_hold(prices: pd.DataFrame, first_session: pd.Timestamp) -> pd.DataFrame:
    """1/N of the portfolio in every symbol priced on `first_session`, bought once and held."""
    on_day = prices.loc[pd.to_datetime(prices["date"]) == pd.Timestamp(first_session), "symbol"]
    symbols = sorted(on_day.unique())
    if not symbols:
        raise ValueError(f"no symbol has a price on {pd.Timestamp(first_session):%Y-%m-%d}")
    return _first_day(symbols, [1.0 / len(symbols)] * len(symbols), first_session)


def index_buy_and_hold(prices: pd.DataFrame, symbol: str, first_session: pd.Timestamp) -> pd.DataFrame | None:
    """All of the portfolio in the index `symbol`, bought once and held; None when it has no price then."""
    dates = pd.to_datetime(prices.loc[prices["symbol"] == symbol, "date"])
    if not (dates == pd.Timestamp(first_session)).any():
        return None
    return _first_day([symbol], [1.0], first_session)


def _first_day(symbols: list[str], weights: list[float], day: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame({"symbol": symbols, "date": pd.Timestamp(day), "weight": weights})[WEIGHT_COLUMNS]
