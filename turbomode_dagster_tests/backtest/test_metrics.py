"""Each metric formula against an independent computation: empyrical-reloaded, or a case worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.backtest import metrics, simulate

empyrical = pytest.importorskip("empyrical")


@pytest.fixture
def curves() -> tuple[pd.Series, pd.Series]:
    """A strategy and a benchmark equity curve over 400 sessions, correlated, with drawdowns."""
    rng = np.random.default_rng(4)
    market = rng.normal(0.0004, 0.011, 400)
    strategy = 0.8 * market + rng.normal(0.0002, 0.006, 400)
    dates = pd.bdate_range("2024-01-02", periods=401)
    equity = pd.Series(1e6 * np.cumprod(np.concatenate(([1.0], 1 + strategy))), index=dates)
    benchmark = pd.Series(1e6 * np.cumprod(np.concatenate(([1.0], 1 + market))), index=dates)
    return equity, benchmark


def test_return_risk_and_ratio_formulas_match_empyrical(curves: tuple[pd.Series, pd.Series]) -> None:
    equity, benchmark = curves
    returns, factor = equity.pct_change().dropna(), benchmark.pct_change().dropna()
    assert metrics.total_return(equity) == pytest.approx(empyrical.cum_returns_final(returns), rel=1e-12)
    assert metrics.cagr(equity) == pytest.approx(empyrical.cagr(returns), rel=1e-12)
    assert metrics.annual_volatility(equity) == pytest.approx(empyrical.annual_volatility(returns), rel=1e-12)
    assert metrics.sharpe(equity) == pytest.approx(empyrical.sharpe_ratio(returns), rel=1e-12)
    assert metrics.sortino(equity) == pytest.approx(empyrical.sortino_ratio(returns), rel=1e-12)
    assert metrics.max_drawdown(equity) == pytest.approx(empyrical.max_drawdown(returns), rel=1e-12)
    assert metrics.calmar(equity) == pytest.approx(empyrical.calmar_ratio(returns), rel=1e-12)
    assert metrics.beta(equity, benchmark) == pytest.approx(empyrical.beta(returns, factor), rel=1e-12)
    information = empyrical.excess_sharpe(returns, factor) * math.sqrt(252)
    assert metrics.information_ratio(equity, benchmark) == pytest.approx(information, rel=1e-12)
    excess = empyrical.cagr(returns) - empyrical.cagr(factor)
    assert metrics.excess_return(equity, benchmark) == pytest.approx(excess, rel=1e-12)


def test_drawdown_and_its_duration_by_hand() -> None:
    equity = pd.Series([100.0, 110.0, 99.0, 88.0, 110.0, 120.0, 108.0, 114.0])
    # Peak 110, trough 88: -20%. Below a high on sessions 2-3 (two) and 6-7 (two, not yet recovered).
    assert metrics.max_drawdown(equity) == pytest.approx(-0.2)
    assert metrics.max_drawdown_duration(equity) == 2
    assert metrics.max_drawdown_duration(pd.Series([100.0, 90.0, 95.0, 99.0, 100.0])) == 3
    assert metrics.max_drawdown_duration(pd.Series([100.0, 101.0, 102.0])) == 0
    assert math.isnan(metrics.calmar(pd.Series([100.0, 101.0, 102.0])))


def test_cagr_and_sortino_by_hand() -> None:
    # 504 sessions (two years) from 100 to 121: 10% a year.
    equity = pd.Series(np.linspace(100.0, 121.0, 505))
    assert metrics.cagr(equity) == pytest.approx(0.10, rel=1e-12)
    # Returns +2%, -1%, +2%, -1%: mean 0.5%, downside RMS sqrt((0.01**2 * 2) / 4) per session.
    zigzag = pd.Series(np.cumprod([1.0, 1.02, 0.99, 1.02, 0.99]))
    downside = math.sqrt(0.01**2 * 2 / 4) * math.sqrt(252)
    assert metrics.sortino(zigzag) == pytest.approx(0.005 * 252 / downside, rel=1e-9)
    assert math.isnan(metrics.sortino(pd.Series([1.0, 1.01, 1.02, 1.03])))  # no downside at all
    assert math.isnan(metrics.sharpe(pd.Series([1.0, 1.0, 1.0])))  # no spread


def trades(*pnl: float, open_pnl: float = 0.0) -> pd.DataFrame:
    rows = [{"pnl": value, "closed": True} for value in pnl]
    return pd.DataFrame([*rows, {"pnl": open_pnl, "closed": False}])


def test_hit_rate_and_profit_factor_count_closed_round_trips_only() -> None:
    book = trades(30.0, -10.0, 5.0, -20.0, 0.0, open_pnl=1_000.0)
    assert metrics.hit_rate(book) == pytest.approx(2 / 5)  # a break-even trip is not a hit
    assert metrics.profit_factor(book) == pytest.approx(35.0 / 30.0)
    assert math.isnan(metrics.hit_rate(trades(open_pnl=5.0)))
    assert math.isnan(metrics.profit_factor(trades(4.0, 2.0)))  # no losses: undefined, not infinite


def test_turnover_exposure_trades_and_fees_from_a_simulation() -> None:
    dates = ["2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25"]
    prices = pd.DataFrame({"symbol": "AAA", "date": dates, "open": 10.0, "close": 10.0})
    # In on session 1 (the whole book), out on session 3: one-way turnover 0.5 + 0.5 over 4 sessions.
    plan = pd.DataFrame({"symbol": "AAA", "date": [dates[0], dates[2]], "weight": [1.0, 0.0]})
    result = simulate(prices, plan, fees_bps=10.0, initial_cash=1_000.0)
    assert metrics.turnover(result.turnover) == pytest.approx((0.5 + 0.5 * 0.999) / (4 / 252), rel=1e-3)
    assert metrics.average_exposure(result.exposure) == pytest.approx(2 / 5, rel=1e-3)  # held at 2 of 5 closes
    assert metrics.number_of_trades(result.orders) == 2
    buy_fee = 1_000.0 - 1_000.0 / 1.001
    sell_fee = (1_000.0 / 1.001) * 0.001
    assert metrics.total_fees(result.orders) == pytest.approx(buy_fee + sell_fee, rel=1e-12)
    summary = metrics.summarize(result)
    assert list(summary) == list(metrics.METRICS)
    assert summary["hit_rate"] == 0.0  # one closed trip, lost its fees
    assert summary["total_return"] == pytest.approx(-(buy_fee + sell_fee) / 1_000.0, rel=1e-12)


def test_a_window_chains_from_the_close_before_it(curves: tuple[pd.Series, pd.Series]) -> None:
    equity, benchmark = curves
    dates = equity.index
    prices = pd.DataFrame({"symbol": "AAA", "date": dates, "open": equity.to_numpy(), "close": equity.to_numpy()})
    plan = pd.DataFrame({"symbol": "AAA", "date": [dates[0]], "weight": [1.0]})
    result = simulate(prices, plan)
    first, second = (
        metrics.summarize(result, benchmark, end=dates[200]),
        metrics.summarize(result, benchmark, start=dates[201]),
    )
    whole = metrics.summarize(result, benchmark)
    assert (1 + first["total_return"]) * (1 + second["total_return"]) == pytest.approx(1 + whole["total_return"])
    assert set(whole) == set(metrics.METRICS) | set(metrics.BENCHMARK_METRICS)
    with pytest.raises(ValueError, match="same sessions"):
        metrics.beta(equity, benchmark.iloc[1:])
