"""Training's memory contract and its row cap: the fold loop hands learners views of one float32 block,
never copies; a cap that does not bind changes nothing, one that binds bounds every fit, reproducibly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.config import Models
from turbomode_dagster.models import ensemble, registry
from turbomode_dagster.models.ensemble import ENSEMBLE, TrainingData, train_ensemble
from turbomode_dagster.models.explain import ensemble_importance
from turbomode_dagster.models.learners import XGBOOST, LearnerSpec
from turbomode_dagster.models.validation import walk_forward_folds
from turbomode_dagster_tests.models.synthetic import synthetic_samples

HORIZON = 5
SPECS = (
    LearnerSpec("hist", XGBOOST, {"tree_method": "hist", "n_estimators": 10, "max_depth": 3, "n_jobs": 1}),
    LearnerSpec("trees", "sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 5, "max_depth": 4, "n_jobs": 1}),
)
FEATURES = ["alpha", "momentum", "volatility", "noise"]


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    """Samples in (symbol, date) order, as training_samples writes them, with a float64 feature mixed in."""
    frame = synthetic_samples(n_symbols=12, n_dates=160, horizon=HORIZON, effect=1.0, seed=5)
    frame = frame.sort_values(["symbol", "date"], ignore_index=True)
    return frame.astype({"alpha": np.float32, "noise": np.float32})


def train(samples: pd.DataFrame, **kwargs):
    return train_ensemble(samples, SPECS, horizon=HORIZON, n_folds=3, seed=1, **kwargs)


def test_learners_get_views_of_one_float32_block_never_copies(samples, monkeypatch):
    """Every frame a learner fits or scores on shares memory with the final fit's frame (the whole block)."""
    handed: list[pd.DataFrame] = []
    fit, proba = ensemble.fit_learner, ensemble.learner_proba
    monkeypatch.setattr(ensemble, "fit_learner", lambda spec, rows, *a: handed.append(rows) or fit(spec, rows, *a))
    monkeypatch.setattr(ensemble, "learner_proba", lambda model, rows: handed.append(rows) or proba(model, rows))
    train(samples)
    whole = handed[-1]
    assert len(whole) == len(samples) and list(whole.columns) == FEATURES
    assert (whole.dtypes == np.float32).all()
    block = whole.to_numpy()  # a view only when the frame is one block: a copy shares nothing
    assert len(handed) == 3 * len(SPECS) * 2 + len(SPECS)  # a fit and a prediction per fold and learner, final fits
    for rows in handed:
        for column in FEATURES:
            values = rows[column].to_numpy()
            assert values.dtype == np.float32 and values.flags["C_CONTIGUOUS"], column
            assert np.shares_memory(values, block), "a learner was handed a copy"


def test_fold_runs_are_the_rows_the_fold_names(samples):
    data = TrainingData.from_samples(samples, tuple(FEATURES))
    assert (np.diff(data.date) >= np.timedelta64(0)).all()
    for fold in walk_forward_folds(data.date, 3, HORIZON):
        train_rows, valid_rows = fold.split(data.date)
        assert np.array_equal(np.arange(len(data))[data.run(fold.train_dates)], train_rows)
        assert np.array_equal(np.arange(len(data))[data.run(fold.valid_dates)], valid_rows)
    with pytest.raises(ValueError, match="contiguous"):
        data.run(np.unique(data.date)[[0, 2]])


def test_training_data_checks_the_contract(samples):
    with pytest.raises(TypeError, match="momentum"):
        TrainingData.from_samples(samples.assign(momentum="x"), tuple(FEATURES))
    with pytest.raises(KeyError, match="noise"):
        TrainingData.from_samples(samples.drop(columns="noise"), tuple(FEATURES))


def test_a_cap_that_does_not_bind_changes_nothing(samples):
    uncapped, capped = train(samples), train(samples, max_train_rows=len(samples), meta_max_rows=len(samples))
    pd.testing.assert_frame_equal(uncapped.metrics, capped.metrics)
    pd.testing.assert_frame_equal(uncapped.oof, capped.oof)
    assert "max_train_rows" not in uncapped.config and capped.config["max_train_rows"] == len(samples)
    assert np.array_equal(capped.ensemble.meta.coef, uncapped.ensemble.meta.coef)


def test_binding_caps_bound_every_fit_and_are_reproducible(samples, monkeypatch):
    cap = 300
    seen: list[int] = []
    fit, meta_fit = ensemble.fit_learner, ensemble.MetaLearner.fit
    monkeypatch.setattr(ensemble, "fit_learner", lambda spec, *args: seen.append(spec.max_rows) or fit(spec, *args))
    monkeypatch.setattr(
        ensemble.MetaLearner, "fit", classmethod(lambda cls, x, y: seen.append(len(x)) or meta_fit.__func__(cls, x, y))
    )
    first = train(samples, max_train_rows=cap, meta_max_rows=cap)
    assert len(seen) == 3 * len(SPECS) + 2 + len(SPECS) + 1 and set(seen) == {cap}
    again = train(samples, max_train_rows=cap, meta_max_rows=cap)
    pd.testing.assert_frame_equal(first.oof, again.oof)
    pd.testing.assert_frame_equal(first.metrics, again.metrics)
    assert not first.oof.equals(train(samples).oof)
    assert {"max_train_rows": cap, "meta_max_rows": cap}.items() <= first.config.items()
    with pytest.raises(ValueError, match="meta_max_rows"):
        train(samples, meta_max_rows=0)


def test_oof_frame_is_compact(samples):
    oof = train(samples).oof
    assert (oof[["p_sell", "p_hold", "p_buy"]].dtypes == np.float32).all()
    assert oof["fold"].dtype == np.int8
    assert set(oof["model"]) == {"hist", "trees", ENSEMBLE}


def test_fingerprint_is_hash_pandas_object_of_the_sorted_frame(samples):
    """Column by column it must give the digest the whole-frame definition gives (model versions stay put)."""
    frame = samples.sort_values(["symbol", "date"], kind="mergesort").reset_index(drop=True)
    frame = frame[sorted(frame.columns)]
    expected = registry.hashlib.sha256(registry._canonical([[c, str(frame[c].dtype)] for c in frame.columns]).encode())
    expected.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    assert registry.data_fingerprint(samples) == expected.hexdigest()
    assert registry.data_fingerprint(samples.iloc[::-1]) == expected.hexdigest()


def test_importance_picks_feature_columns_after_drawing_rows(samples):
    models = train(samples).ensemble.base_models
    whole = ensemble_importance(models, samples, max_rows=200, seed=4, features=FEATURES)
    pd.testing.assert_frame_equal(whole, ensemble_importance(models, samples[FEATURES], max_rows=200, seed=4))


def test_config_caps_default_to_not_binding_at_the_shipped_universe():
    """83 symbols x 10 years is about 210k samples, 170k of them out of fold: neither default cap binds."""
    assert Models().max_train_rows == 1_500_000 and Models().meta_max_rows == 250_000
    for name in ("max_train_rows", "meta_max_rows"):
        with pytest.raises(ValueError, match=name):
            Models(**{name: 10})
