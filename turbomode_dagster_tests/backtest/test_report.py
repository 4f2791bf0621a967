"""run_backtest on a small synthetic market: folds chain into the total, the tables line up, bad input is named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.backtest.report import BacktestParams, BacktestReport, run_backtest
from turbomode_dagster.backtest.strategy import StrategyParams
from turbomode_dagster_tests.backtest.markets import random_walk_closes

DATES = pd.bdate_range("2025-01-06", periods=90)
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "SPY"]
PARAMS = BacktestParams(StrategyParams(0.25, 0.2, 3, 2), chance_seeds=4)


def market() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(21)
    prices = random_walk_closes(rng, DATES, SYMBOLS, 50, 0.0005, 0.015)
    prices["open"] = prices["close"] * np.exp(rng.normal(0, 0.003, len(prices)))
    rows = []
    for model in ("ensemble", "hist"):
        for i, day in enumerate(DATES):
            fold = 0 if i < 30 else 1 if i < 60 else 2
            if model == "ensemble" and fold == 0:
                continue  # as in training: the first fold only trains the meta-learner
            for symbol in SYMBOLS:
                p_sell, p_hold, p_buy = rng.dirichlet([1, 3, 1])
                rows.append((symbol, day, model, fold, p_sell, p_hold, p_buy))
    oof = pd.DataFrame(rows, columns=["symbol", "date", "model", "fold", "p_sell", "p_hold", "p_buy"])
    return prices, oof


@pytest.fixture(scope="module")
def report() -> BacktestReport:
    prices, oof = market()
    return run_backtest(prices, oof, PARAMS, "2025-05-09", "tm-test")


def test_the_period_is_the_ensembles_out_of_fold_sessions(report):
    assert report.period == (f"{DATES[30]:%Y-%m-%d}", f"{DATES[-1]:%Y-%m-%d}")
    assert set(report.legs) == {"ensemble", "hist", "benchmark:equal_weight", "benchmark:SPY"}
    assert report.benchmark == "benchmark:SPY"
    for leg in report.legs.values():
        assert leg.net.equity.index.equals(pd.DatetimeIndex(DATES[30:], name="date"))


def test_fold_returns_chain_into_the_total(report):
    for strategy in report.legs:
        for basis in ("gross", "net"):
            folds = [report.metric(strategy, "total_return", basis, f"fold {n}") for n in (1, 2)]
            total = report.metric(strategy, "total_return", basis)
            assert np.prod([1 + r for r in folds]) - 1 == pytest.approx(total, rel=1e-12), (strategy, basis)


def test_the_tables_line_up_by_run_id(report):
    tables = report.tables()
    runs = tables["backtest_runs"]
    assert runs["run_id"].tolist() == [f"2025-05-09/{s}" for s in report.legs]
    assert set(runs["model_version"]) == {"tm-test"}
    assert runs["parameters"].iloc[0]["benchmark"] == "benchmark:SPY"
    for table in ("backtest_results", "backtest_equity"):
        assert set(tables[table]["run_id"]) == set(runs["run_id"]), table
    trades = tables["backtest_trades"]
    assert set(trades["run_id"]) == {"2025-05-09/ensemble"}, "only the traded strategy's orders are stored"
    assert len(trades) == len(report.legs["ensemble"].net.orders) > 0
    equity = tables["backtest_equity"]
    ensemble = equity[equity["run_id"] == "2025-05-09/ensemble"]
    spy = report.legs["benchmark:SPY"].net.equity
    assert ensemble["benchmark"].to_numpy() == pytest.approx(spy.to_numpy())
    assert (ensemble["drawdown"] <= 0).all() and ensemble["drawdown"].min() < 0
    chance = tables["backtest_results"][tables["backtest_results"]["metric"] == "chance_percentile"]
    assert chance[["run_id", "scope", "basis"]].values.tolist() == [["2025-05-09/ensemble", "total", "net"]]


def test_without_ensemble_rows_or_prices_the_error_names_what_is_missing():
    prices, oof = market()
    with pytest.raises(ValueError, match="no ensemble rows"):
        run_backtest(prices, oof[oof["model"] != "ensemble"], PARAMS, "2025-05-09")
    with pytest.raises(ValueError, match="lacks columns \\['fold'\\]"):
        run_backtest(prices, oof.drop(columns="fold"), PARAMS, "2025-05-09")
    with pytest.raises(ValueError, match="no prices between"):
        run_backtest(prices.assign(date=prices["date"] - pd.Timedelta(days=400)), oof, PARAMS, "2025-05-09")
