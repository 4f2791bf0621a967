"""Registry: deterministic versions and artifact bytes, faithful reloads, upserts, the promotion rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.models import registry
from turbomode_dagster.models.ensemble import ENSEMBLE, model_probabilities, train_ensemble
from turbomode_dagster.models.learners import XGBOOST, LearnerSpec
from turbomode_dagster.models.metrics import CLASS_PRIOR
from turbomode_dagster.storage.turbomode_db import CHAMPION, ModelRecord, TurboModeDB
from turbomode_dagster_tests.models.synthetic import synthetic_samples

SPECS = (
    LearnerSpec("hist", XGBOOST, {"tree_method": "hist", "n_estimators": 15, "max_depth": 3, "n_jobs": 2}),
    LearnerSpec("dart", XGBOOST, {"booster": "dart", "n_estimators": 8, "rate_drop": 0.2, "n_jobs": 1}),
    LearnerSpec("linear", XGBOOST, {"booster": "gblinear", "updater": "coord_descent", "n_jobs": 1}),
    LearnerSpec(
        "forest",
        XGBOOST,
        {"n_estimators": 1, "num_parallel_tree": 8, "learning_rate": 1.0, "subsample": 0.6, "n_jobs": 1},
        max_rows=1500,
    ),
    LearnerSpec("trees", "sklearn.ensemble.ExtraTreesClassifier", {"n_estimators": 10, "max_depth": 5, "n_jobs": 2}),
)


def train(samples: pd.DataFrame):
    return train_ensemble(samples, SPECS, horizon=5, n_folds=2, seed=3)


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return synthetic_samples(n_symbols=15, n_dates=240, effect=1.0, seed=21)


@pytest.fixture(scope="module")
def runs(samples):
    return train(samples), train(samples.sample(frac=1.0, random_state=1))


def test_fingerprint_ignores_row_and_column_order_but_not_values(samples):
    fingerprint = registry.data_fingerprint(samples)
    shuffled = samples.sample(frac=1.0, random_state=0)[list(reversed(samples.columns))]
    assert registry.data_fingerprint(shuffled) == fingerprint
    assert registry.data_fingerprint(samples.assign(date=samples["date"].astype("datetime64[us]"))) == fingerprint
    changed = samples.copy()
    changed.loc[changed.index[7], "noise"] += 1e-9
    assert registry.data_fingerprint(changed) != fingerprint


def test_model_version_is_deterministic_and_sensitive():
    config = {"seed": 1, "learners": [{"name": "a"}]}
    version = registry.model_version("f" * 64, config, "0.1.0")
    assert version == registry.model_version("f" * 64, {"learners": [{"name": "a"}], "seed": 1}, "0.1.0")
    assert version.startswith("tm-") and len(version) == 15 and int(version[3:], 16) >= 0
    assert registry.model_version("f" * 64, config, "0.1.1") != version
    assert registry.model_version("e" * 64, config, "0.1.0") != version
    assert registry.model_version("f" * 64, {**config, "seed": 2}, "0.1.0") != version


def test_identical_training_gives_identical_results_and_artifact_bytes(runs, tmp_path):
    first, second = runs
    pd.testing.assert_frame_equal(first.oof, second.oof)
    pd.testing.assert_frame_equal(first.metrics, second.metrics)
    registry.save_ensemble(first.ensemble, tmp_path / "a", "tm-x")
    registry.save_ensemble(second.ensemble, tmp_path / "b", "tm-x")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert [str(f) for f in files] == [
        "base/dart.json",
        "base/forest.json",
        "base/hist.json",
        "base/linear.json",
        "base/trees.joblib",
        "manifest.json",
        "meta.json",
    ]
    for relative in files:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    manifest = (tmp_path / "a" / "manifest.json").read_text()
    assert manifest == json.dumps(json.loads(manifest), sort_keys=True, indent=2) + "\n"


def test_a_loaded_ensemble_predicts_exactly_as_the_trained_one(runs, samples, tmp_path):
    ensemble = runs[0].ensemble
    registry.save_ensemble(ensemble, tmp_path, "tm-x")
    loaded = registry.load_ensemble(tmp_path)
    assert loaded.feature_names == ensemble.feature_names
    assert [s.to_dict() for s in loaded.specs] == [s.to_dict() for s in ensemble.specs]
    before, after = model_probabilities(ensemble, samples), model_probabilities(loaded, samples)
    for name in before:
        assert np.array_equal(before[name], after[name]), name


def test_a_tampered_artifact_is_refused(runs, tmp_path):
    registry.save_ensemble(runs[0].ensemble, tmp_path, "tm-x")
    meta = tmp_path / "meta.json"
    meta.write_text(meta.read_text().replace("[", "[ ", 1))
    with pytest.raises(ValueError, match="sha256"):
        registry.load_ensemble(tmp_path)


def test_publishing_twice_keeps_one_row_and_the_same_files(runs, samples, tmp_path):
    db = TurboModeDB.at_home(tmp_path)
    row, decision = registry.publish_model(tmp_path, db, samples, runs[0], "0.1.0")
    assert runs[0].metrics.loc[ENSEMBLE, "log_loss"] < runs[0].metrics.loc[CLASS_PRIOR, "log_loss"]
    assert decision.promote and row.status == CHAMPION
    files = {p: p.read_bytes() for p in (tmp_path / "models").rglob("*") if p.is_file()}
    again, second = registry.publish_model(tmp_path, db, samples.iloc[::-1], runs[1], "0.1.0")
    assert again.model_version == row.model_version and again.status == CHAMPION
    assert second.reason == "already the champion"
    assert again.promotion_decision == row.promotion_decision
    assert len(db.models()) == 1
    assert {p: p.read_bytes() for p in (tmp_path / "models").rglob("*") if p.is_file()} == files
    assert row.metrics[ENSEMBLE]["log_loss"] == pytest.approx(runs[0].metrics.loc[ENSEMBLE, "log_loss"])


def register(db: TurboModeDB, version: str, loss: float, prior: float = 1.0, ic: float = 0.05) -> None:
    """A registry row whose metrics carry only what the promotion rule reads (rank IC SE 0.01)."""
    metrics = {ENSEMBLE: {"log_loss": loss, "rank_ic": ic, "rank_ic_se": 0.01}, CLASS_PRIOR: {"log_loss": prior}}
    db.upsert_model(ModelRecord(version, "2026-11-25T00:00:00", "challenger", "f", [], {}, metrics, "/m"))


def statuses(db: TurboModeDB) -> dict[str, str]:
    return {m.model_version: m.status for m in db.models()}


def test_promotion_rule(tmp_path):
    db = TurboModeDB.at_home(tmp_path)
    register(db, "tm-worse-than-prior", 1.01)
    decision = registry.promote(db, "tm-worse-than-prior")
    assert not decision.promote and "class prior" in decision.reason
    assert statuses(db) == {"tm-worse-than-prior": "challenger"}

    register(db, "tm-no-direction", 0.9, ic=0.015)
    decision = registry.promote(db, "tm-no-direction")
    assert not decision.promote and "rank IC 0.0150" in decision.reason and decision.rank_ic_se == 0.01
    assert statuses(db)["tm-no-direction"] == "challenger"

    register(db, "tm-first", 0.95)
    decision = registry.promote(db, "tm-first")
    assert decision.promote and decision.champion_version is None
    assert db.model("tm-first").promotion_decision["log_loss"] == 0.95

    register(db, "tm-worse-than-champion", 0.97)
    decision = registry.promote(db, "tm-worse-than-champion")
    assert not decision.promote and decision.champion_log_loss == 0.95
    assert db.champion().model_version == "tm-first"

    register(db, "tm-better", 0.93)
    decision = registry.promote(db, "tm-better")
    assert decision.promote and decision.champion_version == "tm-first"
    assert statuses(db) == {
        "tm-worse-than-prior": "challenger",
        "tm-no-direction": "challenger",
        "tm-first": "retired",
        "tm-worse-than-champion": "challenger",
        "tm-better": "champion",
    }
    stored = db.model("tm-better").promotion_decision
    assert stored["champion_log_loss"] == 0.95 and stored["class_prior_log_loss"] == 1.0

    register(db, "tm-tie", 0.93)
    assert registry.promote(db, "tm-tie").promote
    assert [m.model_version for m in db.models() if m.status == CHAMPION] == ["tm-tie"]
    with pytest.raises(KeyError):
        registry.promote(db, "tm-unregistered")
