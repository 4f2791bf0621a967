"""The backtest's metrics as tables narrow enough for an asset page (pure).

The whole-period metrics of every leg are a strategy x basis x metric cube; shown flat it is 16 columns
wide and the UI clips it. So: the headline (metrics down, the ensemble and the benchmarks across, net of
costs), and the strategies (ensemble and each base learner, net and gross, on the three numbers that
rank them).
"""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.backtest.report import BENCHMARK_PREFIX, ENSEMBLE, GROSS, NET, TOTAL, BacktestReport

HEADLINE_METRICS = [
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "hit_rate",
    "turnover",
    "average_exposure",
    "number_of_trades",
    "total_fees",
    "excess_return",
    "information_ratio",
    "beta",
]
STRATEGY_METRICS = ["cagr", "sharpe", "max_drawdown"]
DIGITS = 4


def headline_table(report: BacktestReport) -> pd.DataFrame:
    """metric, ensemble, then one column per benchmark (name without its prefix): whole period, net of costs."""
    columns = [ENSEMBLE, *[name for name in report.legs if name.startswith(BENCHMARK_PREFIX)]]
    wide = _total(report, NET).pivot_table(index="metric", columns="strategy", values="value", aggfunc="first")
    wide = wide.reindex(index=[m for m in HEADLINE_METRICS if m in wide.index], columns=columns)
    wide.columns = [name.removeprefix(BENCHMARK_PREFIX) for name in columns]
    return wide.round(DIGITS).rename_axis(None, axis=1).reset_index()


def strategy_table(report: BacktestReport) -> pd.DataFrame:
    """strategy, basis, cagr, sharpe, max_drawdown for the ensemble then each base learner, net before gross."""
    legs = [name for name in report.legs if not name.startswith(BENCHMARK_PREFIX)]
    rows = []
    for name in legs:
        for basis in (NET, GROSS):
            values = _total(report, basis)
            values = values[values["strategy"] == name].set_index("metric")["value"]
            rows.append({"strategy": name, "basis": basis, **{m: round(values[m], DIGITS) for m in STRATEGY_METRICS}})
    return pd.DataFrame(rows, columns=["strategy", "basis", *STRATEGY_METRICS])


def _total(report: BacktestReport, basis: str) -> pd.DataFrame:
    metrics = report.metrics
    return metrics[(metrics["scope"] == TOTAL) & (metrics["basis"] == basis)]
