"""The default learner family and fitting: diverse, seeded, weighted, three-class, NaN-tolerant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.models.learners import (
    DEFAULT_LEARNERS,
    XGBOOST,
    LearnerSpec,
    build_learner,
    fit_learner,
    is_xgboost,
    learner_proba,
    with_threads,
)

# One thread: on a shared two-core machine, OpenMP's second thread can stall behind other processes.
LEARNERS = with_threads(DEFAULT_LEARNERS, 1)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(900, 4)), columns=["a", "b", "c", "d"])
    features.loc[rng.random(900) < 0.1, "b"] = np.nan
    labels = np.digitize(features["a"] + rng.normal(size=900), [-0.6, 0.6])
    return features, labels


def test_the_default_family_has_eight_distinct_learners():
    names = [spec.name for spec in DEFAULT_LEARNERS]
    assert len(names) == 8 == len(set(names))
    xgb_params = [spec.params for spec in DEFAULT_LEARNERS if spec.kind == XGBOOST]
    assert {p.get("tree_method") for p in xgb_params} >= {"hist", "approx", "exact"}
    assert {p.get("booster") for p in xgb_params} >= {"dart", "gblinear"}
    forest = [p for p in xgb_params if p.get("num_parallel_tree", 1) > 1]
    assert forest and forest[0]["n_estimators"] == 1 and forest[0]["learning_rate"] == 1.0
    assert any(p.get("max_depth") == 2 for p in xgb_params)
    assert any(spec.kind.endswith("ExtraTreesClassifier") for spec in DEFAULT_LEARNERS)


@pytest.mark.parametrize("spec", LEARNERS, ids=lambda s: s.name)
def test_each_default_learner_fits_reproducibly_and_gives_three_probabilities(spec, data):
    features, labels = data
    first = learner_proba(fit_learner(spec, features, labels, seed=7), features)
    again = learner_proba(fit_learner(spec, features, labels, seed=7), features)
    assert first.shape == (900, 3)
    assert np.allclose(first.sum(axis=1), 1.0)
    assert np.array_equal(first, again)


def test_a_dotted_path_classifier_gets_imputation_and_the_seed(data):
    features, labels = data
    spec = LearnerSpec("logit", "sklearn.linear_model.LogisticRegression", {"C": 0.5, "random_state": 99})
    model = fit_learner(spec, features, labels, seed=3)
    assert not is_xgboost(model)
    assert model.named_steps["model"].random_state == 3
    assert learner_proba(model, features).shape == (900, 3)


def test_a_classifier_without_sample_weight_still_fits(data):
    features, labels = data
    spec = LearnerSpec("knn", "sklearn.neighbors.KNeighborsClassifier", {"n_neighbors": 15})
    assert learner_proba(fit_learner(spec, features, labels, seed=0), features).shape == (900, 3)


def test_balanced_weights_counter_class_imbalance():
    rng = np.random.default_rng(1)
    features = pd.DataFrame(rng.normal(size=(3000, 3)), columns=["a", "b", "c"])
    labels = rng.choice(3, size=3000, p=[0.1, 0.8, 0.1])
    spec = LearnerSpec("shallow", XGBOOST, {"n_estimators": 20, "max_depth": 2, "n_jobs": 1})
    mean = learner_proba(fit_learner(spec, features, labels, seed=0), features).mean(axis=0)
    assert np.allclose(mean, 1 / 3, atol=0.05)


def test_row_cap_trains_on_a_seeded_sample(data):
    features, labels = data
    capped = LearnerSpec("capped", XGBOOST, {"n_estimators": 5, "n_jobs": 1}, max_rows=300)
    rows = np.sort(np.random.default_rng(4).choice(900, 300, replace=False))
    uncapped = LearnerSpec("uncapped", XGBOOST, {"n_estimators": 5, "n_jobs": 1})
    expected = learner_proba(fit_learner(uncapped, features.iloc[rows], labels[rows], seed=4), features)
    assert np.array_equal(learner_proba(fit_learner(capped, features, labels, seed=4), features), expected)


def test_a_missing_class_is_refused(data):
    features, labels = data
    keep = labels != 2
    with pytest.raises(ValueError, match="every class"):
        fit_learner(LEARNERS[0], features[keep], labels[keep], seed=0)


def test_with_threads_sets_every_learners_thread_count():
    assert {spec.params["n_jobs"] for spec in LEARNERS} == {1}
    assert [spec.name for spec in LEARNERS] == [spec.name for spec in DEFAULT_LEARNERS]


def test_seed_overrides_the_params():
    spec = LearnerSpec("x", XGBOOST, {"random_state": 5})
    assert build_learner(spec, 11).get_params()["random_state"] == 11
    with pytest.raises(ValueError, match="dotted path"):
        build_learner(LearnerSpec("bad", "NoModule", {}), 0)
