"""The strategy's rule on hand-checked probability paths: entry, ranking, holding period, hysteresis, sizing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.backtest.strategy import StrategyParams, target_weights
from turbomode_dagster.signals import BUY, signal_classes

DATES = pd.bdate_range("2026-01-05", periods=6)


def frame(paths: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    """Probability rows from {symbol: [(p_sell, p_buy) per date]}; None skips a date."""
    rows = [
        {"symbol": symbol, "date": DATES[i], "p_sell": pair[0], "p_buy": pair[1]}
        for symbol, path in paths.items()
        for i, pair in enumerate(path)
        if pair is not None
    ]
    return pd.DataFrame(rows)


def held(weights: pd.DataFrame) -> list[list[str]]:
    """The held symbols per date, sorted."""
    positive = weights[weights["weight"] > 0]
    return [sorted(positive.loc[positive["date"] == d, "symbol"]) for d in DATES[: weights["date"].nunique()]]


def params(**changes) -> StrategyParams:
    values = {"entry_probability": 0.3, "exit_probability": 0.2, "min_holding_sessions": 2, "max_positions": 2}
    return StrategyParams(**{**values, **changes})


def test_the_best_buys_enter_up_to_max_positions_and_share_equally():
    probabilities = frame({"A": [(0.1, 0.40)], "B": [(0.1, 0.50)], "C": [(0.1, 0.35)], "D": [(0.1, 0.29)]})
    weights = target_weights(probabilities, params())
    assert held(weights) == [["A", "B"]]  # C is a BUY too but ranks third; D is under the threshold
    assert weights.set_index("symbol")["weight"].to_dict() == {"A": 0.5, "B": 0.5, "C": 0.0, "D": 0.0}


def test_a_position_is_held_for_the_minimum_period_then_exits_when_it_fades():
    collapse = [(0.1, 0.5), (0.6, 0.05), (0.6, 0.05), (0.6, 0.05)]
    assert held(target_weights(frame({"A": collapse}), params(min_holding_sessions=2))) == [["A"], ["A"], [], []]
    assert held(target_weights(frame({"A": collapse}), params(min_holding_sessions=1))) == [["A"], [], [], []]


def test_hysteresis_keeps_a_holding_between_the_thresholds_but_enters_nothing_there():
    between = (0.1, 0.25)  # under entry 0.3, over exit 0.2
    probabilities = frame({"A": [(0.1, 0.4), between, between, (0.1, 0.15)], "B": [between] * 4})
    assert held(target_weights(probabilities, params(min_holding_sessions=1))) == [["A"], ["A"], ["A"], []]


def test_a_sell_signal_or_a_missing_prediction_ends_a_holding_after_the_minimum():
    probabilities = frame({"A": [(0.1, 0.4), (0.1, 0.4), (0.24, 0.22)], "B": [(0.1, 0.4), (0.1, 0.4), None]})
    assert held(target_weights(probabilities, params(min_holding_sessions=1))) == [["A", "B"], ["A", "B"], []]


def test_conviction_weights_are_proportional_to_p_buy_minus_p_sell():
    probabilities = frame({"A": [(0.1, 0.4)], "B": [(0.1, 0.7)]})
    weights = target_weights(probabilities, params(weighting="conviction")).set_index("symbol")["weight"]
    assert weights["A"] == pytest.approx(0.3 / 0.9)
    assert weights["B"] == pytest.approx(0.6 / 0.9)


def test_with_no_memory_the_holdings_are_exactly_the_scanners_buy_signals():
    rng = np.random.default_rng(3)
    symbols = [f"S{i}" for i in range(30)]
    rows = pd.DataFrame(
        [(s, d, *rng.dirichlet([1, 4, 1])[[0, 2]]) for s in symbols for d in DATES],
        columns=["symbol", "date", "p_sell", "p_buy"],
    )
    weights = target_weights(rows, params(exit_probability=0.3, min_holding_sessions=1, max_positions=30))
    joined = weights.merge(rows, on=["symbol", "date"])
    expected = signal_classes(joined["p_sell"], joined["p_buy"], 0.3) == BUY
    assert expected.any() and not expected.all()
    assert ((joined["weight"] > 0).to_numpy() == expected).all()


def test_a_weight_depends_on_nothing_after_its_session():
    rng = np.random.default_rng(4)
    rows = pd.DataFrame(
        [(s, d, *rng.dirichlet([1, 3, 1])[[0, 2]]) for s in "ABCDEFGH" for d in DATES],
        columns=["symbol", "date", "p_sell", "p_buy"],
    )
    base = target_weights(rows, params(max_positions=3))
    later = rows["date"] > DATES[2]
    changed = rows.assign(p_buy=rows["p_buy"].where(~later, 1 - rows["p_buy"]))
    moved = target_weights(changed, params(max_positions=3))
    early = base["date"] <= DATES[2]
    pd.testing.assert_frame_equal(base[early], moved[early])
    assert not base[~early].equals(moved[~early])


def test_bad_parameters_and_frames_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="exit_probability"):
        params(exit_probability=0.4)
    with pytest.raises(KeyError, match="p_buy"):
        target_weights(pd.DataFrame({"symbol": ["A"], "date": [DATES[0]], "p_sell": [0.1]}), params())
    twice = frame({"A": [(0.1, 0.4)]})
    with pytest.raises(ValueError, match="more than one probability row for A on 2026-01-05"):
        target_weights(pd.concat([twice, twice]), params())
