"""The backtest's metrics as narrow tables: the headline (metrics down) and the strategies (net, gross)."""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.backtest.report import BacktestReport
from turbomode_dagster.backtest.tables import HEADLINE_METRICS, headline_table, strategy_table

LEGS = ["ensemble", "hist", "benchmark:equal_weight", "benchmark:SPY"]


def report() -> BacktestReport:
    """Every leg, basis and scope with a value that encodes where it came from: leg index, basis, metric index."""
    rows = []
    for leg, name in enumerate(LEGS):
        for basis, offset in (("net", 0.0), ("gross", 0.5)):
            for m, metric in enumerate(HEADLINE_METRICS):
                rows.append((name, "total", basis, metric, leg + offset + m / 100))
                rows.append((name, "fold 1", basis, metric, -1.0))  # a fold scope: never shown
    metrics = pd.DataFrame(rows, columns=["strategy", "scope", "basis", "metric", "value"])
    legs = dict.fromkeys(LEGS)  # the tables read only the legs' names
    return BacktestReport("2026-11-25", "tm-x", None, ("2025-01-02", "2026-11-18"), LEGS[-1], legs, metrics, None)


def test_the_headline_has_metrics_down_and_the_ensemble_then_benchmarks_across_net() -> None:
    table = headline_table(report())
    assert list(table.columns) == ["metric", "ensemble", "equal_weight", "SPY"]
    assert list(table["metric"]) == HEADLINE_METRICS
    sharpe = table[table["metric"] == "sharpe"].iloc[0]
    index = HEADLINE_METRICS.index("sharpe") / 100
    assert (sharpe["ensemble"], sharpe["equal_weight"], sharpe["SPY"]) == (index, 2 + index, 3 + index)


def test_the_strategy_table_lists_ensemble_and_learners_net_before_gross() -> None:
    table = strategy_table(report())
    assert list(table.columns) == ["strategy", "basis", "cagr", "sharpe", "max_drawdown"]
    assert list(zip(table["strategy"], table["basis"], strict=True)) == [
        ("ensemble", "net"),
        ("ensemble", "gross"),
        ("hist", "net"),
        ("hist", "gross"),
    ]
    assert table.loc[3, "cagr"] == 1.5 + HEADLINE_METRICS.index("cagr") / 100
