"""Honest stacking: base learners under a multinomial logistic meta-learner, both walk-forward.

Purged walk-forward folds give every base learner out-of-fold probabilities: fold k's block is
scored by base learners fitted only on dates before it, less the `horizon`-date purge. The
meta-learner walks forward on those: for fold k >= 1 it is fitted on the out-of-fold rows of the
earlier folds that fall inside fold k's purged training dates, and scores fold k's block. So an
ensemble prediction comes from a block that neither the base learners nor the meta-learner was
fitted on, nor any label window overlapping it; the first fold only trains the first meta-learner.
The model kept for scoring fits the base learners on all samples and the meta-learner on all
out-of-fold rows. This costs about (n_folds / 2 + 1) fits of each learner on all the data, a
fraction of nested stacking's cost.

Base learners train with balanced class weights (to separate the rare classes); the meta-learner is
unweighted, so the ensemble's probabilities are calibrated to the true class frequencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.linear_model import LogisticRegression

from turbomode_dagster.models import PROBA_COLUMNS
from turbomode_dagster.models.learners import DEFAULT_LEARNERS, LearnerSpec, fit_learner, learner_proba
from turbomode_dagster.models.metrics import class_prior, metrics_table
from turbomode_dagster.models.validation import Fold, walk_forward_folds

ENSEMBLE = "ensemble"
SAMPLE_KEYS = ("symbol", "date")
TARGET_COLUMNS = ("fwd_return", "label")
META_C = 1.0
META_LOG_FLOOR = 1e-4


@dataclass(frozen=True)
class MetaLearner:
    """Multinomial logistic regression on the base learners' log-probabilities, kept as plain arrays."""

    coef: np.ndarray
    intercept: np.ndarray

    @classmethod
    def fit(cls, inputs: np.ndarray, labels: np.ndarray) -> MetaLearner:
        """L2-regularised (C = META_C), unweighted fit: calibration is the meta-learner's job."""
        model = LogisticRegression(C=META_C, max_iter=1000).fit(inputs, labels)
        return cls(model.coef_.copy(), model.intercept_.copy())

    def predict_proba(self, inputs: np.ndarray) -> np.ndarray:
        """Softmax of the linear scores: n x 3 probabilities."""
        scores = inputs @ self.coef.T + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        weights = np.exp(scores)
        return weights / weights.sum(axis=1, keepdims=True)


def meta_inputs(base_probas: Sequence[np.ndarray]) -> np.ndarray:
    """The meta-learner's inputs: each base learner's clipped log-probabilities, side by side."""
    return np.hstack([np.log(np.clip(p, META_LOG_FLOOR, 1.0)) for p in base_probas])


@dataclass(frozen=True)
class FittedEnsemble:
    """Everything scoring needs: the specs, the feature order, the fitted base learners and meta."""

    specs: tuple[LearnerSpec, ...]
    feature_names: tuple[str, ...]
    base_models: dict[str, ClassifierMixin]
    meta: MetaLearner
    horizon: int
    seed: int


@dataclass(frozen=True)
class EnsembleResult:
    """A training run's output: the model for scoring and its out-of-sample record.

    `oof` holds symbol, date, model, fold and the probability columns for every validation row,
    once per base learner (all folds) and once as "ensemble" (folds after the first); `metrics` has
    a row per model plus the baselines, all scored on the rows the ensemble has; `priors` the class
    frequencies of each fold's training rows; `meta_train_dates` the dates each fold's meta-learner
    was fitted on.
    """

    ensemble: FittedEnsemble
    oof: pd.DataFrame
    metrics: pd.DataFrame
    priors: pd.DataFrame
    folds: list[Fold]
    meta_train_dates: dict[int, np.ndarray]
    config: dict[str, Any]


def feature_columns(samples: pd.DataFrame) -> list[str]:
    """The feature columns of a training-samples frame: everything but the keys and the targets."""
    return [c for c in samples.columns if c not in (*SAMPLE_KEYS, *TARGET_COLUMNS)]


def ensemble_config(
    specs: Sequence[LearnerSpec],
    features: Sequence[str],
    horizon: int,
    n_folds: int,
    seed: int,
) -> dict[str, Any]:
    """The training recipe as JSON-ready data (what the model version hashes besides data and code)."""
    return {
        "learners": [spec.to_dict() for spec in specs],
        "features": list(features),
        "horizon": horizon,
        "n_folds": n_folds,
        "seed": seed,
        "stacking": "walk_forward",
        "meta": {"kind": "multinomial_logistic_l2", "C": META_C, "log_floor": META_LOG_FLOOR},
    }


def train_ensemble(
    samples: pd.DataFrame,
    specs: Sequence[LearnerSpec] = DEFAULT_LEARNERS,
    horizon: int = 5,
    n_folds: int = 4,
    seed: int = 0,
    features: Sequence[str] | None = None,
) -> EnsembleResult:
    """Walk-forward honest stacking over `samples`, then the final ensemble fitted on all of them."""
    specs = tuple(specs)
    if len({spec.name for spec in specs}) != len(specs):
        raise ValueError("learner names must be unique")
    if n_folds < 2:
        raise ValueError("walk-forward stacking needs at least two folds (the first only trains the meta-learner)")
    features = tuple(features or feature_columns(samples))
    samples = _prepared(samples, features)
    inputs, labels, dates = samples.loc[:, list(features)], samples["label"].to_numpy(), samples["date"]
    folds = walk_forward_folds(dates, n_folds, horizon)
    base = {spec.name: np.full((len(samples), len(PROBA_COLUMNS)), np.nan) for spec in specs}
    fold_of = np.full(len(samples), -1)
    priors = {}
    for fold in folds:
        train, valid = fold.split(dates)
        for spec in specs:
            model = _fit(spec, inputs.iloc[train], labels[train], seed, f"walk-forward fold {fold.number}")
            base[spec.name][valid] = learner_proba(model, inputs.iloc[valid])
        fold_of[valid] = fold.number
        priors[fold.number] = class_prior(labels[train])
    stacked = np.full((len(samples), len(PROBA_COLUMNS)), np.nan)
    meta_train_dates = {}
    for fold in folds[1:]:
        train, valid = fold.split(dates)
        earlier = train[fold_of[train] >= 0]
        meta = MetaLearner.fit(meta_inputs([base[s.name][earlier] for s in specs]), labels[earlier])
        stacked[valid] = meta.predict_proba(meta_inputs([base[s.name][valid] for s in specs]))
        meta_train_dates[fold.number] = np.unique(dates.iloc[earlier].to_numpy())
    oof = _oof_frame(samples, fold_of, {**base, ENSEMBLE: stacked})
    scored = oof[oof["fold"] >= folds[1].number]
    prior_frame = pd.DataFrame.from_dict(priors, orient="index", columns=list(PROBA_COLUMNS))
    covered = np.flatnonzero(fold_of >= 0)
    final = FittedEnsemble(
        specs,
        features,
        {spec.name: _fit(spec, inputs, labels, seed, "the final fit on all samples") for spec in specs},
        MetaLearner.fit(meta_inputs([base[s.name][covered] for s in specs]), labels[covered]),
        horizon,
        seed,
    )
    return EnsembleResult(
        ensemble=final,
        oof=oof,
        metrics=metrics_table(scored, samples, prior_frame, horizon),
        priors=prior_frame,
        folds=folds,
        meta_train_dates=meta_train_dates,
        config=ensemble_config(specs, features, horizon, n_folds, seed),
    )


class LearnerFitError(RuntimeError):
    """A base learner failed to fit; the message names the learner, its kind and the fold."""


def _fit(spec: LearnerSpec, inputs: pd.DataFrame, labels: np.ndarray, seed: int, where: str) -> object:
    """fit_learner, with a failure that says which learner broke and where (not a bare library error)."""
    try:
        return fit_learner(spec, inputs, labels, seed)
    except Exception as exc:
        raise LearnerFitError(
            f"learner {spec.name!r} ({spec.kind}) failed in {where} on {len(labels):,} rows: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def predict(ensemble: FittedEnsemble, features_frame: pd.DataFrame) -> pd.DataFrame:
    """p_sell, p_hold, p_buy (rows summing to 1) for each row of `features_frame`, on its index."""
    missing = [c for c in ensemble.feature_names if c not in features_frame.columns]
    if missing:
        raise KeyError(f"features missing from the frame to score: {missing}")
    proba = model_probabilities(ensemble, features_frame)[ENSEMBLE]
    return _proba_frame(proba).set_index(features_frame.index)


def model_probabilities(ensemble: FittedEnsemble, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each base learner's probabilities for `rows`, and the ensemble's (under "ensemble")."""
    inputs = rows.loc[:, list(ensemble.feature_names)]
    probas = {spec.name: learner_proba(ensemble.base_models[spec.name], inputs) for spec in ensemble.specs}
    probas[ENSEMBLE] = ensemble.meta.predict_proba(meta_inputs(list(probas.values())))
    return probas


def _oof_frame(samples: pd.DataFrame, fold_of: np.ndarray, probas: dict[str, np.ndarray]) -> pd.DataFrame:
    """Long out-of-fold frame: each model's probabilities on the rows it scored, with the fold number."""
    parts = []
    for model, proba in probas.items():
        rows = np.flatnonzero(~np.isnan(proba[:, 0]))
        keys = samples.iloc[rows][list(SAMPLE_KEYS)].reset_index(drop=True)
        parts.append(keys.assign(model=model, fold=fold_of[rows]).join(_proba_frame(proba[rows])))
    return pd.concat(parts, ignore_index=True)


def _prepared(samples: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    """The samples checked against the input contract, sorted by (date, symbol), with a fresh index."""
    missing = [c for c in (*SAMPLE_KEYS, *TARGET_COLUMNS, *features) if c not in samples.columns]
    if missing:
        raise KeyError(f"training samples lack columns: {missing}")
    if samples["label"].isna().any() or not samples["label"].isin([0, 1, 2]).all():
        raise ValueError("label must be 0 (SELL), 1 (HOLD) or 2 (BUY) on every training row")
    frame = samples.loc[:, [*SAMPLE_KEYS, *features, *TARGET_COLUMNS]].copy()
    frame["date"] = pd.to_datetime(frame["date"])
    frame["label"] = frame["label"].astype(np.int64)
    return frame.sort_values(["date", "symbol"], kind="mergesort").reset_index(drop=True)


def _proba_frame(proba: np.ndarray) -> pd.DataFrame:
    """Probabilities as a frame with the p_sell, p_hold, p_buy columns."""
    return pd.DataFrame(proba, columns=list(PROBA_COLUMNS))
