"""The chance baseline's permutations and ranking, the buy-and-hold benchmarks, and the resolved parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.backtest import simulate
from turbomode_dagster.backtest.benchmarks import equal_weight_buy_and_hold, index_buy_and_hold
from turbomode_dagster.backtest.chance import ChanceBaseline, permuted_symbols
from turbomode_dagster.backtest.report import params_from_settings
from turbomode_dagster.backtest.strategy import StrategyParams, target_weights
from turbomode_dagster.config import parse_settings
from turbomode_dagster_tests.backtest.markets import random_walk_closes
from turbomode_dagster_tests.conftest import patch_config, shipped_config

DATES = pd.bdate_range("2026-01-05", periods=40)
SYMBOLS = [f"S{i:02d}" for i in range(12)]


@pytest.fixture(scope="module")
def probabilities() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        [(s, d, *rng.dirichlet([1, 3, 1])[[0, 2]]) for s in SYMBOLS for d in DATES],
        columns=["symbol", "date", "p_sell", "p_buy"],
    )


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    frame = random_walk_closes(rng, DATES, SYMBOLS, 100, 0, 0.01)
    return frame.assign(open=frame["close"] * 0.999)


def test_a_permutation_keeps_every_sessions_position_count_and_changes_the_names(probabilities):
    params = StrategyParams(0.25, 0.2, 3, 4)
    real = target_weights(probabilities, params)
    permuted = target_weights(permuted_symbols(probabilities, seed=1), params)
    counts = [w[w["weight"] > 0].groupby("date").size().reindex(DATES, fill_value=0) for w in (real, permuted)]
    pd.testing.assert_series_equal(counts[0], counts[1])
    assert counts[0].sum() > 0
    assert not real[real["weight"] > 0]["symbol"].equals(permuted[permuted["weight"] > 0]["symbol"])
    again = target_weights(permuted_symbols(probabilities, seed=1), params)
    pd.testing.assert_frame_equal(permuted, again)  # seeded: a rerun draws the same permutation


def test_the_percentile_rank_counts_the_seeds_beaten_with_ties_as_half():
    chance = ChanceBaseline(np.array([0.1, 0.2, 0.3, 0.4]), real=0.3)
    assert chance.percentile_rank == 62.5
    assert chance.mean == pytest.approx(0.25)
    assert chance.summary()["chance_sharpe_p5"] == pytest.approx(np.percentile([0.1, 0.2, 0.3, 0.4], 5))
    assert ChanceBaseline(np.array([0.1, 0.2]), real=0.5).percentile_rank == 100.0


def test_buy_and_hold_buys_once_on_the_first_session_and_never_trades_again(prices):
    weights = equal_weight_buy_and_hold(prices, DATES[0])
    assert weights["weight"].tolist() == [1 / len(SYMBOLS)] * len(SYMBOLS)
    result = simulate(prices, weights, fees_bps=5, slippage_bps=5)
    assert set(result.orders["date"]) == {DATES[1]}  # decided at the first close, filled at the next open
    assert (result.orders["shares"] > 0).all()
    assert index_buy_and_hold(prices, "SPY", DATES[0]) is None  # not in this universe
    index = index_buy_and_hold(prices, "S03", DATES[0])
    assert index[["symbol", "weight"]].values.tolist() == [["S03", 1.0]]


def test_the_defaults_resolve_to_the_scanners_rule_and_the_label_horizon():
    settings = parse_settings(shipped_config())
    params = params_from_settings(settings)
    assert params.strategy.entry_probability == settings.scanner.min_probability
    assert params.strategy.exit_probability == pytest.approx(0.8 * settings.scanner.min_probability)
    assert params.strategy.min_holding_sessions == settings.labels.horizon
    assert (params.fees_bps, params.slippage_bps) == (5.0, 5.0)
    tuned = parse_settings(patch_config(shipped_config(), {"backtest.min_holding_sessions": 3, "labels.horizon": 10}))
    assert params_from_settings(tuned).strategy.min_holding_sessions == 3


def test_an_exit_above_the_scanners_threshold_is_named():
    raw = patch_config(shipped_config(), {"backtest.exit_probability": 0.3, "scanner.min_probability": 0.25})
    with pytest.raises(ValueError, match=r"backtest\.exit_probability 0\.3 is above the entry threshold 0\.25"):
        params_from_settings(parse_settings(raw))
