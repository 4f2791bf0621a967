"""run_backtest on grids equals the long-frame composition it replaced, on a market with gaps.

The reference is the path run_backtest used to take: per model the rows on the ensemble's dates with
a price row, `target_weights`, `simulate`; the chance baseline `permuted_symbols` then the same. Any
difference in layout (a symbol a model lacks, a price row missing, a date without predictions, rows
in any order) would show as a different equity curve, order or chance Sharpe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.backtest import simulate
from turbomode_dagster.backtest.benchmarks import equal_weight_buy_and_hold, index_buy_and_hold
from turbomode_dagster.backtest.chance import permuted_symbols
from turbomode_dagster.backtest.metrics import sharpe
from turbomode_dagster.backtest.report import BacktestParams, run_backtest
from turbomode_dagster.backtest.strategy import StrategyParams, target_weights
from turbomode_dagster_tests.backtest.markets import random_walk_closes

DATES = pd.bdate_range("2025-01-06", periods=80)
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "SPY"]
PARAMS = BacktestParams(StrategyParams(0.3, 0.22, 1, 3), chance_seeds=6)  # holding 1: a gap forces an exit


def gappy_market() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices and out-of-fold rows with every kind of hole the grids must lay out as the long path did."""
    rng = np.random.default_rng(5)
    prices = random_walk_closes(rng, DATES, SYMBOLS, 40, 0.0003, 0.02)
    prices["open"] = prices["close"] * np.exp(rng.normal(0, 0.004, len(prices)))
    # CCC (never a BUY below) misses bars, and its rows on those dates must not count
    prices = prices[~((prices["symbol"] == "CCC") & prices["date"].isin(DATES[[25, 40, 41, 66]]))]
    rows = []
    for model in ("ensemble", "hist", "lgbm"):
        for i, day in enumerate(DATES):
            fold = 0 if i < 20 else 1 if i < 50 else 2
            if model == "ensemble" and (fold == 0 or i == 35):
                continue  # the first fold trains the meta-learner; session 35 has no ensemble rows
            for symbol in [*SYMBOLS, "ZZZ"]:  # ZZZ has no prices at all
                if model == "lgbm" and symbol == "EEE":
                    continue  # a symbol one model never predicts
                if model == "hist" and i == 44:
                    continue  # a session one base learner skipped
                p_sell, p_hold, p_buy = rng.dirichlet([1, 2, 1.5])
                if symbol == "CCC":
                    p_buy = 0.01
                rows.append((symbol, day, model, fold, p_sell, p_hold, p_buy))
    oof = pd.DataFrame(rows, columns=["symbol", "date", "model", "fold", "p_sell", "p_hold", "p_buy"])
    return prices, oof.sample(frac=1.0, random_state=3).reset_index(drop=True)


def reference(prices: pd.DataFrame, oof: pd.DataFrame, params: BacktestParams) -> dict:
    """Net and gross results per leg and the chance Sharpes, composed from the long-frame functions."""
    dates = np.sort(oof.loc[oof["model"] == "ensemble", "date"].unique())
    first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    prices = prices[(prices["date"] >= first) & (prices["date"] <= last)]
    priced = pd.MultiIndex.from_frame(prices[["symbol", "date"]])
    on = oof[oof["date"].isin(dates)]
    on = on[pd.MultiIndex.from_frame(on[["symbol", "date"]]).isin(priced)]
    costs = {"fees_bps": params.fees_bps, "slippage_bps": params.slippage_bps}
    weights = {m: target_weights(on[on["model"] == m], params.strategy) for m in sorted(on["model"].unique())}
    weights["benchmark:equal_weight"] = equal_weight_buy_and_hold(prices, first)
    weights["benchmark:SPY"] = index_buy_and_hold(prices, "SPY", first)
    legs = {name: (simulate(prices, w), simulate(prices, w, **costs)) for name, w in weights.items()}
    chance = []
    for seed in range(params.chance_seeds):
        permuted = permuted_symbols(on[on["model"] == "ensemble"], seed)
        permuted = permuted[pd.MultiIndex.from_frame(permuted[["symbol", "date"]]).isin(priced)]
        chance.append(sharpe(simulate(prices, target_weights(permuted, params.strategy), **costs).equity))
    return {"legs": legs, "chance": np.array(chance)}


@pytest.fixture(scope="module")
def both():
    prices, oof = gappy_market()
    return run_backtest(prices, oof, PARAMS, "2025-04-25"), reference(prices, oof, PARAMS)


def test_every_leg_trades_and_values_exactly_as_the_long_frame_path(both):
    report, expected = both
    assert set(report.legs) == set(expected["legs"])
    for name, (gross, net) in expected["legs"].items():
        for basis, want in (("gross", gross), ("net", net)):
            got = getattr(report.legs[name], basis)
            pd.testing.assert_series_equal(got.equity, want.equity, check_exact=True, obj=f"{name} {basis}")
            pd.testing.assert_frame_equal(got.orders, want.orders, check_exact=True, obj=f"{name} {basis}")
            pd.testing.assert_frame_equal(got.positions, want.positions, check_exact=True, obj=f"{name} {basis}")
    assert len(report.legs["ensemble"].net.orders) > 10, "the strategy must trade for the comparison to mean much"


def test_the_chance_baseline_draws_the_same_permutations(both):
    report, expected = both
    np.testing.assert_array_equal(report.chance.sharpes, expected["chance"])
    assert len(set(report.chance.sharpes)) == PARAMS.chance_seeds, "each seed is a different relabelling"


def test_a_holding_through_a_missing_bar_is_kept_without_an_order():
    """A held name whose bar is missing one session is neither sold nor ordered there: it could not trade."""
    days = pd.bdate_range("2025-03-03", periods=12)
    prices = pd.DataFrame(
        [(s, d, 10.0 + i, 10.0 + i) for s in ("AAA", "BBB") for i, d in enumerate(days)],
        columns=["symbol", "date", "open", "close"],
    )
    gap = days[5]
    prices = prices[~((prices["symbol"] == "AAA") & (prices["date"] == gap))]
    oof = pd.DataFrame(
        [(s, d, "ensemble", 1, 0.05, 0.15, 0.8 if s == "AAA" else 0.1) for s in ("AAA", "BBB") for d in days],
        columns=["symbol", "date", "model", "fold", "p_sell", "p_hold", "p_buy"],
    )
    params = BacktestParams(StrategyParams(0.5, 0.4, 10, 1), chance_seeds=2, base_learners=False)
    net = run_backtest(prices, oof, params, "2025-03-18").legs["ensemble"].net
    held = net.positions["AAA"]
    assert held.iloc[1] > 0 and held.iloc[1:].to_numpy() == pytest.approx(held.iloc[1], rel=1e-12), "held through"
    material = net.orders[net.orders["shares"].abs() > 1e-6]
    assert material["date"].tolist() == [days[1]], "bought once; no order at or after the missing bar"
