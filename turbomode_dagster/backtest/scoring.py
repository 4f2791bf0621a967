"""Adapter from engine results to the metric formulas in `backtest.metrics`, over a whole run or one fold.

A fold's window [first, last] is scored on the returns of its sessions: the first return runs from
the close before `first`, so consecutive folds' returns add up to the whole run's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from turbomode_dagster.backtest import metrics
from turbomode_dagster.backtest.engine import BacktestResult

SHARPE = "sharpe"


def returns_of(equity: pd.Series, window: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> pd.Series:
    """Session returns of an equity curve, optionally only those of the sessions in `window`."""
    returns = equity.pct_change().iloc[1:]
    if window is None:
        return returns
    return returns[(returns.index >= window[0]) & (returns.index <= window[1])]


def sharpe(equity: pd.Series) -> float:
    """Annualised Sharpe ratio of an equity curve's session returns (rf 0)."""
    return float(metrics.sharpe(returns_of(equity)))


def drawdown(equity: pd.Series) -> pd.Series:
    """Fractional drawdown from the running peak at each session (0 at a new high, negative below it)."""
    return equity / equity.cummax() - 1.0


def score(
    result: BacktestResult, benchmark: pd.Series, window: tuple[pd.Timestamp, pd.Timestamp] | None = None
) -> dict[str, float]:
    """The metrics of one simulation (whole run, or the sessions of `window`) against a benchmark curve."""
    returns = returns_of(result.equity, window)
    inside = _inside(result.equity.index, window)
    orders = result.orders[_inside(pd.DatetimeIndex(result.orders["date"]), window)]
    return {
        "total_return": metrics.total_return(returns),
        "cagr": metrics.cagr(returns),
        "annual_volatility": metrics.annual_volatility(returns),
        SHARPE: metrics.sharpe(returns),
        "sortino": metrics.sortino(returns),
        "max_drawdown": metrics.max_drawdown(returns),
        "exposure": float(result.exposure[inside].mean()),
        "trades": float(len(orders)),
        "fees": float(orders["fee"].sum()),
    }


def _inside(index: pd.Index, window: tuple[pd.Timestamp, pd.Timestamp] | None) -> np.ndarray:
    if window is None:
        return np.ones(len(index), dtype=bool)
    return np.asarray((index >= window[0]) & (index <= window[1]))
