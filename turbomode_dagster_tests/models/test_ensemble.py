"""Honest stacking: chance out of sample when nothing is predictable, skill when something is, and
purging proved on the fold index sets rather than inferred from scores."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.models import PROBA_COLUMNS
from turbomode_dagster.models.ensemble import (
    ENSEMBLE,
    TrainingPlan,
    fit_base_learner,
    model_probabilities,
    predict,
    stack_ensemble,
    train_ensemble,
)
from turbomode_dagster.models.learners import XGBOOST, LearnerSpec
from turbomode_dagster.models.metrics import ALWAYS_HOLD, CLASS_PRIOR, ovr_auc
from turbomode_dagster.models.validation import date_axis
from turbomode_dagster_tests.models.synthetic import auc_tolerance, synthetic_samples

HORIZON = 5
SPECS = (
    LearnerSpec("hist", XGBOOST, {"tree_method": "hist", "n_estimators": 40, "max_depth": 4, "n_jobs": 1}),
    LearnerSpec(
        "linear", XGBOOST, {"booster": "gblinear", "updater": "coord_descent", "n_estimators": 10, "n_jobs": 1}
    ),
    LearnerSpec(
        "trees",
        "sklearn.ensemble.ExtraTreesClassifier",
        {"n_estimators": 30, "max_depth": 6, "min_samples_leaf": 20, "n_jobs": 1},
    ),
)


def train(samples: pd.DataFrame, specs=SPECS):
    return train_ensemble(samples, specs, horizon=HORIZON, n_folds=4, seed=0)


@pytest.fixture(scope="module")
def null_panel() -> pd.DataFrame:
    return synthetic_samples(effect=0.0, horizon=HORIZON, seed=11)


@pytest.fixture(scope="module")
def null_run(null_panel):
    return train(null_panel)


@pytest.fixture(scope="module")
def planted_panel() -> pd.DataFrame:
    return synthetic_samples(effect=1.0, horizon=HORIZON, seed=12)


@pytest.fixture(scope="module")
def planted_run(planted_panel):
    return train(planted_panel)


def test_learners_fitted_apart_in_any_order_stack_to_the_same_ensemble(planted_panel, planted_run):
    """Each base learner fitted on its own, in reverse order and passed through pickle (as between two
    processes), stacks to the ensemble one call trains: the same bits everywhere."""
    plan = TrainingPlan.from_samples(planted_panel, HORIZON, 4)
    fits = {spec.name: pickle.loads(pickle.dumps(fit_base_learner(plan, spec, seed=0))) for spec in SPECS[::-1]}
    apart = stack_ensemble(plan, SPECS, fits, HORIZON, seed=0)
    pd.testing.assert_frame_equal(apart.oof, planted_run.oof, check_exact=True)
    pd.testing.assert_frame_equal(apart.metrics, planted_run.metrics, check_exact=True)
    assert apart.config == planted_run.config
    rows = planted_panel.iloc[:300]
    for name, proba in model_probabilities(planted_run.ensemble, rows).items():
        np.testing.assert_array_equal(model_probabilities(apart.ensemble, rows)[name], proba, err_msg=name)
    with pytest.raises(ValueError, match=r"no base-learner fit for \['hist'\]"):
        stack_ensemble(plan, SPECS, {k: v for k, v in fits.items() if k != "hist"}, HORIZON, seed=0)


def test_oof_frame_covers_each_validation_row_once_per_model(null_run, null_panel):
    """Base learners score every fold's block; the ensemble every block after the first, whose
    out-of-fold rows only train the first meta-learner."""
    oof = null_run.oof
    assert list(oof.columns) == ["symbol", "date", "model", "fold", *PROBA_COLUMNS]
    assert list(oof["model"].unique()) == ["hist", "linear", "trees", ENSEMBLE]
    for model, rows in oof.groupby("model", observed=True):
        folds = null_run.folds[1:] if model == ENSEMBLE else null_run.folds
        validated = np.concatenate([fold.valid_dates for fold in folds])
        assert len(rows) == null_panel["date"].isin(validated).sum(), model
        assert not rows.duplicated(["symbol", "date"]).any()
    assert np.allclose(oof[list(PROBA_COLUMNS)].sum(axis=1), 1.0)
    assert list(null_run.metrics.index) == ["hist", "linear", "trees", ENSEMBLE, ALWAYS_HOLD, CLASS_PRIOR]


def test_no_predictable_effect_means_chance_out_of_sample(null_run, null_panel):
    reference = null_run.oof[null_run.oof["model"] == ENSEMBLE].merge(null_panel, on=["symbol", "date"])
    tolerance = auc_tolerance(reference["label"].to_numpy(), HORIZON)
    assert tolerance < 0.05
    for model in ["hist", "linear", "trees", ENSEMBLE]:
        row = null_run.metrics.loc[model]
        assert abs(row["auc_ovr"] - 0.5) < tolerance, model
        assert abs(row["rank_ic"]) < 3 * row["rank_ic_se"], model
    ensemble, prior = null_run.metrics.loc[ENSEMBLE], null_run.metrics.loc[CLASS_PRIOR]
    assert ensemble["log_loss"] > prior["log_loss"] - 0.01


def test_the_null_test_has_power_in_sample(null_run, null_panel):
    """The same learners scored on their own training rows look skilful: a leak would show."""
    rows = null_panel[null_panel["date"].isin(null_run.folds[-1].valid_dates)]
    in_sample = model_probabilities(null_run.ensemble, rows)["hist"]
    tolerance = auc_tolerance(rows["label"].to_numpy(), HORIZON)
    assert ovr_auc(in_sample, rows["label"].to_numpy()) > 0.5 + tolerance


def test_a_planted_effect_is_found_out_of_sample(planted_run):
    metrics = planted_run.metrics
    ensemble = metrics.loc[ENSEMBLE]
    labels = planted_run.oof.merge(synthetic_samples(effect=1.0, horizon=HORIZON, seed=12), on=["symbol", "date"])
    assert ensemble["auc_ovr"] > max(0.55, 0.5 + auc_tolerance(labels["label"].to_numpy(), HORIZON))
    assert ensemble["rank_ic"] > 5 * ensemble["rank_ic_se"]
    assert ensemble["rank_ic"] > 0.2 and ensemble["rank_ic_pooled"] > 0.2
    assert ensemble["log_loss"] < metrics.loc[CLASS_PRIOR, "log_loss"] < metrics.loc[ALWAYS_HOLD, "log_loss"]


def assert_purged(axis: np.ndarray, train_dates: np.ndarray, valid_dates: np.ndarray) -> None:
    """Every training label window (t, t + h] ends before the first validation date."""
    last_label_day = np.searchsorted(axis, train_dates).max() + HORIZON
    assert last_label_day < np.searchsorted(axis, valid_dates).min()


def test_look_ahead_trap_purging_checked_on_fold_index_sets():
    """A feature equal to fwd_return scores perfectly whatever the folds do, so the score proves
    nothing; the index sets of every fold and every meta-learner's training rows are checked instead."""
    samples = synthetic_samples(n_symbols=12, n_dates=300, horizon=HORIZON, seed=13, leak=True)
    run = train(samples, SPECS[:1])
    assert run.metrics.loc[ENSEMBLE, "auc_ovr"] > 0.95
    axis = date_axis(samples["date"])
    for fold in run.folds:
        assert_purged(axis, fold.train_dates, fold.valid_dates)
    assert sorted(run.meta_train_dates) == [fold.number for fold in run.folds[1:]]
    for fold in run.folds[1:]:
        meta_dates = run.meta_train_dates[fold.number]
        assert set(meta_dates) <= set(fold.train_dates)
        assert_purged(axis, meta_dates, fold.valid_dates)
        earlier = np.concatenate([f.valid_dates for f in run.folds if f.number < fold.number])
        assert set(meta_dates) <= set(earlier), "the meta-learner trains only on out-of-fold rows"
    scored = run.oof[run.oof["model"] == ENSEMBLE]
    for fold in run.folds[1:]:
        dates = scored.loc[scored["fold"] == fold.number, "date"].unique()
        assert set(dates) == set(pd.to_datetime(fold.valid_dates))


def test_predict_returns_normalised_probabilities_on_the_frame_index(planted_run):
    frame = synthetic_samples(n_symbols=5, n_dates=20, effect=1.0, seed=99).set_index("symbol")
    proba = predict(planted_run.ensemble, frame)
    assert list(proba.columns) == list(PROBA_COLUMNS)
    assert proba.index.equals(frame.index)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    high = frame["alpha"] > 1.5
    assert (proba.loc[high.values, "p_buy"].mean()) > (proba.loc[(~high).values, "p_buy"].mean())
    with pytest.raises(KeyError, match="alpha"):
        predict(planted_run.ensemble, frame.drop(columns="alpha"))


def test_bad_labels_and_duplicate_names_are_refused(null_panel):
    with pytest.raises(ValueError, match="unique"):
        train(null_panel, (SPECS[0], SPECS[0]))
    with pytest.raises(ValueError, match="label"):
        train(null_panel.assign(label=null_panel["label"].replace(2, 3)))
