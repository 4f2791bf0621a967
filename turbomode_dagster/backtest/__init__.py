"""Backtests of target weights: a pure engine with vectorbt's order semantics, and the metrics of its results.

No Dagster imports here; the `backtest_report` asset builds on these functions.
"""

from __future__ import annotations

from turbomode_dagster.backtest import metrics
from turbomode_dagster.backtest.engine import BacktestInputError, BacktestResult, simulate
from turbomode_dagster.backtest.metrics import summarize

__all__ = ["BacktestInputError", "BacktestResult", "metrics", "simulate", "summarize"]
