"""Native TreeSHAP: agrees with the shap package, adds up to the margin, ranks the planted driver first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from turbomode_dagster.models.explain import (
    IMPORTANCE_COLUMNS,
    contributions,
    ensemble_importance,
    global_importance,
    supports_shap,
    top_contributions,
)
from turbomode_dagster.models.learners import XGBOOST, LearnerSpec, fit_learner
from turbomode_dagster_tests.models.synthetic import synthetic_samples

FEATURES = ["alpha", "momentum", "volatility", "noise"]
SPECS = {
    "hist": LearnerSpec("hist", XGBOOST, {"tree_method": "hist", "n_estimators": 30, "max_depth": 3, "n_jobs": 1}),
    "dart": LearnerSpec("dart", XGBOOST, {"booster": "dart", "n_estimators": 10, "rate_drop": 0.2, "n_jobs": 1}),
    "linear": LearnerSpec("linear", XGBOOST, {"booster": "gblinear", "updater": "coord_descent", "n_jobs": 1}),
    "forest": LearnerSpec(
        "forest",
        XGBOOST,
        {"n_estimators": 1, "num_parallel_tree": 10, "learning_rate": 1.0, "subsample": 0.6, "n_jobs": 1},
    ),
    "trees": LearnerSpec("trees", "sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 10, "n_jobs": 1}),
}


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return synthetic_samples(n_symbols=20, n_dates=150, effect=1.5, seed=5)


@pytest.fixture(scope="module")
def models(samples) -> dict[str, object]:
    return {name: fit_learner(spec, samples[FEATURES], samples["label"].to_numpy(), 0) for name, spec in SPECS.items()}


def test_native_contributions_match_the_shap_package(models, samples):
    rows = samples[FEATURES].head(300)
    native = contributions(models["hist"], rows)
    reference = np.asarray(shap.TreeExplainer(models["hist"]).shap_values(rows))
    assert native.shape == (300, 3, len(FEATURES) + 1)
    assert reference.shape == (300, len(FEATURES), 3)
    assert np.allclose(native[:, :, :-1], reference.transpose(0, 2, 1), atol=1e-5)


@pytest.mark.parametrize("name", ["hist", "dart", "linear", "forest"])
def test_contributions_plus_bias_add_up_to_the_margin(models, samples, name):
    rows = samples[FEATURES].head(300)
    margin = models[name].predict(rows, output_margin=True)
    assert np.allclose(contributions(models[name], rows).sum(axis=2), margin, atol=1e-4)


def test_global_importance_ranks_the_planted_feature_first(models, samples):
    table = global_importance(models["hist"], "hist", samples[FEATURES], max_rows=500)
    assert list(table.columns) == IMPORTANCE_COLUMNS
    assert len(table) == 3 * len(FEATURES)
    for label, part in table.groupby("class_label"):
        assert list(part["rank"]) == [1, 2, 3, 4], label
        assert part["mean_abs_shap"].is_monotonic_decreasing
    firsts = table[table["rank"] == 1].set_index("class_label")["feature"]
    assert firsts["BUY"] == "alpha" and firsts["SELL"] == "alpha"


def test_learners_without_native_shap_are_skipped(models, samples):
    assert not supports_shap(models["trees"])
    assert global_importance(models["trees"], "trees", samples[FEATURES]).empty
    table = ensemble_importance(models, samples[FEATURES], max_rows=300)
    assert set(table["model_name"]) == {"hist", "dart", "linear", "forest"}


def test_top_contributions_are_signed_and_ordered(models, samples):
    rows = samples[FEATURES].head(50)
    top = top_contributions(models["hist"], rows, k=2)
    predicted = models["hist"].predict_proba(rows).argmax(axis=1)
    full = contributions(models["hist"], rows)
    assert len(top) == 50 and all(len(entry) == 2 for entry in top)
    for i, entry in enumerate(top):
        values = [item["contribution"] for item in entry]
        assert abs(values[0]) >= abs(values[1])
        j = FEATURES.index(entry[0]["feature"])
        assert values[0] == pytest.approx(float(full[i, predicted[i], j]))
        assert abs(values[0]) == pytest.approx(np.abs(full[i, predicted[i], :-1]).max())
    sells = top_contributions(models["hist"], rows, k=1, classes=[0] * 50)
    assert [s[0]["contribution"] for s in sells] == pytest.approx(
        [float(full[i, 0, FEATURES.index(s[0]["feature"])]) for i, s in enumerate(sells)]
    )
