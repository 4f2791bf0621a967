"""The backtest on the sample market, out of fold and net of costs: no edge over chance on a random walk,
a clear one when the planted effect is on. The markets and their trained ensembles are shared with the
model honesty tests (sample_market.py), so this module adds only the backtests (a few seconds each).

20 permuted-signal seeds, as the report uses: with the null strategy exchangeable with its
permutations, it falls outside the seeds' 1st-99th percentile (about their min-max) with probability
about 2/21; the sample market's fixed seed makes the outcome reproducible. The planted strategy must
beat the 95th percentile, which a null strategy does about once in twenty.
"""

from __future__ import annotations

import pytest

from turbomode_dagster.backtest.report import ENSEMBLE, BacktestParams, BacktestReport, run_backtest
from turbomode_dagster.backtest.strategy import StrategyParams
from turbomode_dagster_tests.models.sample_market import HORIZON, PLANTED, sample_market, sample_run

PARAMS = BacktestParams(StrategyParams(0.25, 0.2, HORIZON, 10), fees_bps=5.0, slippage_bps=5.0, chance_seeds=20)


def backtest(planted_effect: float) -> BacktestReport:
    market, run = sample_market(planted_effect), sample_run(planted_effect)
    return run_backtest(market.bars, run.oof, PARAMS, "2019-12-31", "tm-sample")


@pytest.fixture(scope="module")
def null_report() -> BacktestReport:
    return backtest(0.0)


@pytest.fixture(scope="module")
def planted_report() -> BacktestReport:
    return backtest(PLANTED)


def test_on_a_random_walk_the_strategy_is_inside_the_chance_band(null_report):
    chance = null_report.chance
    assert chance.real == null_report.metric(ENSEMBLE, "sharpe", basis="net")
    assert chance.percentile(1) <= chance.real <= chance.percentile(99), (chance.real, chance.sharpes)
    assert null_report.metric(ENSEMBLE, "number_of_trades") > 50  # it did trade: the null result is not an idle book


def test_with_the_planted_effect_the_strategy_beats_the_95th_percentile_of_chance(planted_report):
    chance = planted_report.chance
    assert chance.real > chance.percentile(95), (chance.real, chance.sharpes)
    assert planted_report.metric(ENSEMBLE, "chance_percentile") == 100.0
    # Net of costs below gross, both above the chance band: the edge survives 5 + 5 bps.
    assert planted_report.metric(ENSEMBLE, "sharpe", basis="gross") > chance.real


def test_every_base_learner_and_the_benchmark_are_backtested_on_the_same_sessions(planted_report):
    legs = planted_report.legs
    assert set(legs) == {"ensemble", "hist", "linear", "benchmark:equal_weight"}
    sessions = legs[ENSEMBLE].net.equity.index
    for leg in legs.values():
        assert leg.net.equity.index.equals(sessions)
        assert leg.gross.equity.iloc[-1] > leg.net.equity.iloc[-1]  # costs cost something
    folds = sorted(planted_report.metrics["scope"].unique())
    assert folds == ["fold 1", "fold 2", "fold 3", "total"]
