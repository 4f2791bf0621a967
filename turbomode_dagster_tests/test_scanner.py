"""scan_session: probabilities from the ensemble, the BUY/SELL/HOLD rule, SHAP drivers, missing symbols.

One small ensemble (two XGBoost learners, which have TreeSHAP, and an ExtraTrees pipeline, which has
not) is trained once on the synthetic panel with a planted effect; each test scans one of its dates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster import scanner
from turbomode_dagster.models import PROBA_COLUMNS
from turbomode_dagster.models.ensemble import FittedEnsemble, predict, train_ensemble
from turbomode_dagster.models.explain import contributions
from turbomode_dagster.models.learners import XGBOOST, LearnerSpec, is_xgboost
from turbomode_dagster.scanner import PREDICTION_COLUMNS, SIGNAL_COLUMNS, scan_session
from turbomode_dagster_tests.models.synthetic import synthetic_samples

SPECS = (
    LearnerSpec("hist", XGBOOST, {"tree_method": "hist", "n_estimators": 20, "max_depth": 3, "n_jobs": 1}),
    LearnerSpec(
        "linear", XGBOOST, {"booster": "gblinear", "updater": "coord_descent", "n_estimators": 10, "n_jobs": 1}
    ),
    LearnerSpec("trees", "sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 10, "max_depth": 4, "n_jobs": 1}),
)
VERSION = "tm-0123456789ab"
TARGET = "2099-01-02"  # any string: the scanner passes the target session through untouched
SIGNAL_OF = {"SELL": 0, "HOLD": 1, "BUY": 2}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return synthetic_samples(n_symbols=12, n_dates=200, effect=1.0, seed=5)


@pytest.fixture(scope="module")
def ensemble(panel) -> FittedEnsemble:
    return train_ensemble(panel, SPECS, horizon=5, n_folds=3, seed=0).ensemble


@pytest.fixture(scope="module")
def day(panel) -> pd.Timestamp:
    return panel["date"].max()


def scan(panel, ensemble, day, universe=None, min_probability=0.3, top_k=3):
    universe = sorted(panel["symbol"].unique()) if universe is None else universe
    return scan_session(panel, universe, ensemble, VERSION, day.strftime("%Y-%m-%d"), TARGET, min_probability, top_k)


def expected_signal(p_sell: float, p_buy: float, min_probability: float) -> str:
    if p_buy >= min_probability and p_buy > p_sell:
        return "BUY"
    if p_sell >= min_probability and p_sell > p_buy:
        return "SELL"
    return "HOLD"


def test_predictions_are_the_ensembles_normalised_probabilities(panel, ensemble, day):
    result = scan(panel, ensemble, day)
    predictions = result.predictions
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert list(predictions["symbol"]) == sorted(panel["symbol"].unique())
    assert np.allclose(predictions[list(PROBA_COLUMNS)].sum(axis=1), 1.0, atol=1e-12)
    assert ((predictions[list(PROBA_COLUMNS)] > 0) & (predictions[list(PROBA_COLUMNS)] < 1)).all().all()
    rows = panel[panel["date"] == day].sort_values("symbol")
    expected = predict(ensemble, rows)
    assert np.array_equal(predictions[list(PROBA_COLUMNS)].to_numpy(), expected.to_numpy())
    assert (predictions["model_version"] == VERSION).all()
    assert result.missing == []


@pytest.mark.parametrize("min_probability", [0.25, 0.33, 0.4, 0.6])
def test_the_signal_rule_follows_the_probabilities(panel, ensemble, day, min_probability):
    result = scan(panel, ensemble, day, min_probability=min_probability)
    merged = result.signals.merge(result.predictions, on=["symbol", "as_of_date", "target_date", "model_version"])
    assert len(merged) == len(result.predictions) == len(result.signals)
    for row in merged.itertuples():
        assert row.signal == expected_signal(row.p_sell, row.p_buy, min_probability), row
        assert row.confidence == (row.p_sell, row.p_hold, row.p_buy)[SIGNAL_OF[row.signal]], row


def test_the_thresholds_above_exercise_every_signal(panel, ensemble, day):
    """The parametrised rule test is not vacuous: across its thresholds all three signals occur."""
    seen = set()
    for min_probability in (0.25, 0.33, 0.4, 0.6):
        seen |= set(scan(panel, ensemble, day, min_probability=min_probability).signals["signal"])
    assert seen == {"BUY", "SELL", "HOLD"}


def test_the_rule_at_its_edges(panel, ensemble, day, monkeypatch):
    """min_probability is inclusive, a BUY/SELL tie is HOLD, and HOLD's confidence is p_hold."""
    crafted = [
        ([0.1, 0.6, 0.3], "BUY", 0.3),  # p_buy exactly at the threshold
        ([0.3, 0.6, 0.1], "SELL", 0.3),
        ([0.35, 0.3, 0.35], "HOLD", 0.3),  # both likely enough, neither likelier
        ([0.2, 0.51, 0.29], "HOLD", 0.51),  # not likely enough
        ([0.4, 0.15, 0.45], "BUY", 0.45),
        ([0.5, 0.1, 0.4], "SELL", 0.5),
        ([0.05, 0.9, 0.05], "HOLD", 0.9),
    ]
    universe = sorted(panel["symbol"].unique())[: len(crafted)]

    def fixed(ensemble, rows):
        assert len(rows) == len(crafted)
        return pd.DataFrame([p for p, _, _ in crafted], columns=list(PROBA_COLUMNS), index=rows.index)

    monkeypatch.setattr(scanner, "predict", fixed)
    result = scan(panel, ensemble, day, universe=universe, min_probability=0.3)
    assert list(result.signals["signal"]) == [signal for _, signal, _ in crafted]
    assert list(result.signals["confidence"]) == [confidence for _, _, confidence in crafted]


def test_top_features_are_the_mean_treeshap_drivers_of_the_chosen_class(panel, ensemble, day):
    top_k = 3
    result = scan(panel, ensemble, day, min_probability=0.33, top_k=top_k)
    signals = result.signals
    assert list(signals.columns) == SIGNAL_COLUMNS
    rows = panel[panel["date"] == day].sort_values("symbol")
    inputs = rows.loc[:, list(ensemble.feature_names)]
    chosen = signals["signal"].map(SIGNAL_OF).to_numpy()
    explained = [m for m in ensemble.base_models.values() if is_xgboost(m)]
    assert len(explained) == 2  # the ExtraTrees pipeline has no TreeSHAP and is left out
    mean = np.mean([contributions(m, inputs)[np.arange(len(rows)), chosen, :-1] for m in explained], axis=0)
    for features, row in zip(signals["top_features"], mean, strict=True):
        assert len(features) == top_k
        assert all(set(f) == {"feature", "contribution"} for f in features)
        magnitudes = [abs(f["contribution"]) for f in features]
        assert magnitudes == sorted(magnitudes, reverse=True)
        names = [f["feature"] for f in features]
        assert len(set(names)) == top_k and set(names) <= set(ensemble.feature_names)
        expected = np.argsort(-np.abs(row), kind="stable")[:top_k]
        assert names == [ensemble.feature_names[j] for j in expected]
        assert [f["contribution"] for f in features] == [round(float(row[j]), 6) for j in expected]
    # On the synthetic panel alpha drives the next returns, so it leads the explanation of a BUY or SELL.
    moves = signals[signals["signal"] != "HOLD"]
    assert len(moves) and (moves["top_features"].map(lambda f: f[0]["feature"]) == "alpha").mean() > 0.5


def test_a_symbol_without_a_row_on_the_day_is_missing_and_the_rest_are_scored(panel, ensemble, day):
    symbols = sorted(panel["symbol"].unique())
    dropped = symbols[3]
    features = panel[~((panel["symbol"] == dropped) & (panel["date"] == day))]
    universe = [*symbols[:-1], "ZZZZ"]  # the last symbol has rows but is outside the universe
    result = scan_session(features, universe, ensemble, VERSION, day.strftime("%Y-%m-%d"), TARGET, 0.3, 2)
    assert result.missing == sorted([dropped, "ZZZZ"])
    scored = [s for s in symbols[:-1] if s != dropped]
    assert list(result.predictions["symbol"]) == scored
    assert list(result.signals["symbol"]) == scored
    assert result.predictions[list(PROBA_COLUMNS)].notna().all().all()


def test_the_dates_are_passed_through(panel, ensemble, day):
    result = scan(panel, ensemble, day)
    for frame in (result.predictions, result.signals):
        assert (frame["as_of_date"] == day.strftime("%Y-%m-%d")).all()
        assert (frame["target_date"] == TARGET).all()
        assert (frame["model_version"] == VERSION).all()


def test_a_day_without_rows_scores_nothing_and_lists_the_universe(panel, ensemble):
    universe = sorted(panel["symbol"].unique())
    result = scan_session(panel, universe, ensemble, VERSION, "1999-12-31", TARGET, 0.3, 3)
    assert result.predictions.empty and list(result.predictions.columns) == PREDICTION_COLUMNS
    assert result.signals.empty and list(result.signals.columns) == SIGNAL_COLUMNS
    assert result.missing == universe
