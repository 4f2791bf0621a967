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

Memory is bounded by one float32 copy of the features (`TrainingData`): rows sorted by date make
every fold's training and validation rows a contiguous run, handed to the learners as views, never
copies; out-of-fold probabilities are kept as float32 arrays and scored from them directly, and the
long out-of-fold frame is filled once at the end. Optional row caps bound every fit's time.

`train_ensemble` is `fit_base_learner` for each learner (its folds and its final fit, depending only on
the shared `TrainingPlan`, its spec and the seed) followed by `stack_ensemble`, so the learners can be
fitted in any order or in separate processes with bit-identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

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
        """L2-regularised (C = META_C), unweighted fit: calibration is the meta-learner's job.

        On one BLAS thread: lbfgs makes many small matrix products, and OpenBLAS threads spinning on
        two busy cores made a 250k-row fit 4x slower (8x the CPU); one thread is also reproducible
        whatever the machine's core count.
        """
        with threadpool_limits(limits=1, user_api="blas"):
            model = LogisticRegression(C=META_C, max_iter=1000).fit(inputs, labels)
        return cls(model.coef_.copy(), model.intercept_.copy())

    def predict_proba(self, inputs: np.ndarray) -> np.ndarray:
        """Softmax of the linear scores: n x 3 probabilities."""
        scores = inputs @ self.coef.T + self.intercept
        scores -= scores.max(axis=1, keepdims=True)
        weights = np.exp(scores)
        return weights / weights.sum(axis=1, keepdims=True)


def meta_inputs(base_probas: Sequence[np.ndarray]) -> np.ndarray:
    """The meta-learner's inputs: each base learner's clipped log-probabilities, side by side (float64)."""
    width = len(PROBA_COLUMNS)
    inputs = np.empty((len(base_probas[0]), width * len(base_probas)), dtype=np.float64)
    for k, proba in enumerate(base_probas):
        clipped = np.clip(np.asarray(proba, dtype=np.float64), META_LOG_FLOOR, 1.0)
        inputs[:, k * width : (k + 1) * width] = np.log(clipped)
    return inputs


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
    max_train_rows: int | None = None,
    meta_max_rows: int | None = None,
) -> dict[str, Any]:
    """The training recipe as JSON-ready data (what the model version hashes besides data and code).

    A row cap is recorded only when set, so an uncapped recipe hashes as it did before caps existed.
    """
    caps = {"max_train_rows": max_train_rows, "meta_max_rows": meta_max_rows}
    capped = {name: cap for name, cap in caps.items() if cap is not None}
    return {
        "learners": [spec.to_dict() for spec in specs],
        "features": list(features),
        "horizon": horizon,
        "n_folds": n_folds,
        "seed": seed,
        "stacking": "walk_forward",
        "meta": {"kind": "multinomial_logistic_l2", "C": META_C, "log_floor": META_LOG_FLOOR},
        **capped,
    }


@dataclass(frozen=True)
class TrainingPlan:
    """What every fit of a training run shares: the samples as the fits read them and the purged
    walk-forward folds over them, each fold's (training, validation) rows as runs of `data`."""

    data: TrainingData
    folds: list[Fold]
    runs: dict[int, tuple[slice, slice]]

    @classmethod
    def from_samples(
        cls, samples: pd.DataFrame, horizon: int, n_folds: int, features: Sequence[str] | None = None
    ) -> TrainingPlan:
        """Check the fold count, build the float32 block and the folds."""
        if n_folds < 2:
            raise ValueError("walk-forward stacking needs at least two folds (the first only trains the meta-learner)")
        data = TrainingData.from_samples(samples, tuple(features or feature_columns(samples)))
        folds = walk_forward_folds(data.date, n_folds, horizon)
        return cls(
            data, folds, {fold.number: (data.run(fold.train_dates), data.run(fold.valid_dates)) for fold in folds}
        )


@dataclass(frozen=True)
class BaseFit:
    """One base learner's share of a training run: its out-of-fold probabilities on every fold's block
    (float32, NaN on the rows before the first block) and the model fitted on all rows for scoring."""

    name: str
    oof: np.ndarray
    final: object


def fit_base_learner(plan: TrainingPlan, spec: LearnerSpec, seed: int, max_train_rows: int | None = None) -> BaseFit:
    """`spec` fitted on each fold's purged training rows and scored on its block, then on all rows.

    Depends only on the plan, the spec, the seed and the cap, so learners can be fitted in any order or
    apart (one step each) with the same result.
    """
    data = plan.data
    oof = np.full((len(data), len(PROBA_COLUMNS)), np.nan, dtype=np.float32)
    for fold in plan.folds:
        train, valid = plan.runs[fold.number]
        model = _fit(spec, data, train, seed, max_train_rows, f"walk-forward fold {fold.number}")
        oof[valid] = learner_proba(model, data.rows(valid))
        del model
    final = _fit(spec, data, slice(0, len(data)), seed, max_train_rows, "the final fit on all rows")
    return BaseFit(spec.name, oof, final)


def train_ensemble(
    samples: pd.DataFrame,
    specs: Sequence[LearnerSpec] = DEFAULT_LEARNERS,
    horizon: int = 5,
    n_folds: int = 4,
    seed: int = 0,
    features: Sequence[str] | None = None,
    max_train_rows: int | None = None,
    meta_max_rows: int | None = None,
) -> EnsembleResult:
    """Walk-forward honest stacking over `samples`, then the final ensemble fitted on all of them.

    `max_train_rows` caps every base learner's fit (on top of each spec's own `max_rows`) and
    `meta_max_rows` every meta-learner's fit, both by a seeded sample without replacement: they bound
    time however large the universe grows. None: no cap. The same as `fit_base_learner` for each spec
    and then `stack_ensemble`.
    """
    specs = _checked(specs, max_train_rows, meta_max_rows)
    plan = TrainingPlan.from_samples(samples, horizon, n_folds, features)
    fits = {spec.name: fit_base_learner(plan, spec, seed, max_train_rows) for spec in specs}
    return stack_ensemble(plan, specs, fits, horizon, seed, max_train_rows, meta_max_rows)


def stack_ensemble(
    plan: TrainingPlan,
    specs: Sequence[LearnerSpec],
    fits: dict[str, BaseFit],
    horizon: int,
    seed: int,
    max_train_rows: int | None = None,
    meta_max_rows: int | None = None,
) -> EnsembleResult:
    """The meta-learners walk-forward on the base learners' out-of-fold probabilities, the final
    ensemble, the metrics and the out-of-fold frame (`plan`'s feature block is released on the way)."""
    specs = _checked(specs, max_train_rows, meta_max_rows)
    missing = [spec.name for spec in specs if spec.name not in fits]
    if missing:
        raise ValueError(f"no base-learner fit for {missing}")
    data, folds, runs = plan.data, plan.folds, plan.runs
    base = {spec.name: fits[spec.name].oof for spec in specs}
    fold_of = np.full(len(data), -1, dtype=np.int8)
    priors = {}
    for fold in folds:
        train, valid = runs[fold.number]
        fold_of[valid] = fold.number
        priors[fold.number] = class_prior(data.label[train])
    stacked = np.full((len(data), len(PROBA_COLUMNS)), np.nan, dtype=np.float32)
    meta_train_dates = {}
    first_scored = runs[folds[0].number][1].start
    for fold in folds[1:]:
        train, valid = runs[fold.number]
        earlier = slice(first_scored, train.stop)  # the out-of-fold rows among the purged training rows
        meta = _fit_meta(base, specs, data, earlier, seed, meta_max_rows)
        stacked[valid] = meta.predict_proba(meta_inputs([base[s.name][valid] for s in specs]))
        meta_train_dates[fold.number] = np.unique(data.date[earlier])
    prior_frame = pd.DataFrame.from_dict(priors, orient="index", columns=list(PROBA_COLUMNS))
    validated = slice(first_scored, len(data))  # the folds' blocks tile the dates from the first block on
    scored = slice(runs[folds[1].number][1].start, len(data))
    final = FittedEnsemble(
        specs,
        data.names,
        {spec.name: fits[spec.name].final for spec in specs},
        _fit_meta(base, specs, data, validated, seed, meta_max_rows),
        horizon,
        seed,
    )
    data = data.without_features()  # every learner is fitted: free the block before the long frame is built
    probas = {**base, ENSEMBLE: stacked}
    metrics = metrics_table(
        {name: proba[scored] for name, proba in probas.items()},
        data.label[scored],
        data.fwd_return[scored],
        data.date[scored],
        prior_frame.loc[fold_of[scored], list(PROBA_COLUMNS)].to_numpy(),
        horizon,
    )
    return EnsembleResult(
        ensemble=final,
        oof=_oof_frame(data, fold_of, probas, {**{spec.name: validated for spec in specs}, ENSEMBLE: scored}),
        metrics=metrics,
        priors=prior_frame,
        folds=folds,
        meta_train_dates=meta_train_dates,
        config=ensemble_config(specs, data.names, horizon, len(folds), seed, max_train_rows, meta_max_rows),
    )


def _checked(
    specs: Sequence[LearnerSpec], max_train_rows: int | None, meta_max_rows: int | None
) -> tuple[LearnerSpec, ...]:
    """The specs as a tuple, once their names are unique and the row caps positive (or None)."""
    specs = tuple(specs)
    if len({spec.name for spec in specs}) != len(specs):
        raise ValueError("learner names must be unique")
    for name, cap in (("max_train_rows", max_train_rows), ("meta_max_rows", meta_max_rows)):
        if cap is not None and cap < 1:
            raise ValueError(f"{name} must be a positive row count or None, got {cap}")
    return specs


@dataclass(frozen=True)
class TrainingData:
    """The samples as the fold loop reads them: float32 features in one block, rows in (date, symbol) order.

    The block is feature-major (features x rows), so a run of rows is a view whose every column is
    contiguous: `rows(run)` hands a learner a DataFrame without copying the data (XGBoost reads the
    columns in place), and walk-forward folds over date-sorted rows are always such runs.
    """

    block: np.ndarray
    names: tuple[str, ...]
    symbol: np.ndarray
    date: np.ndarray
    label: np.ndarray
    fwd_return: np.ndarray

    @classmethod
    def from_samples(cls, samples: pd.DataFrame, features: tuple[str, ...]) -> TrainingData:
        """Check `samples` against the input contract, sort by (date, symbol), fill the float32 block."""
        missing = [c for c in (*SAMPLE_KEYS, *TARGET_COLUMNS, *features) if c not in samples.columns]
        if missing:
            raise KeyError(f"training samples lack columns: {missing}")
        label = samples["label"]
        if label.isna().any() or not label.isin([0, 1, 2]).all():
            raise ValueError("label must be 0 (SELL), 1 (HOLD) or 2 (BUY) on every training row")
        not_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(samples[c])]
        if not_numeric:
            raise TypeError(f"feature columns must be numeric, these are not: {not_numeric}")
        dates = pd.to_datetime(samples["date"]).to_numpy(dtype="datetime64[ns]")
        symbols = samples["symbol"].to_numpy()
        order = np.lexsort((pd.factorize(symbols, sort=True)[0], dates))  # stable: (date, symbol)
        block = np.empty((len(features), len(samples)), dtype=np.float32)
        for j, name in enumerate(features):
            block[j] = samples[name].to_numpy(dtype=np.float32, na_value=np.nan)[order]
        return cls(
            block,
            features,
            symbols[order],
            dates[order],
            label.to_numpy(dtype=np.int64)[order],
            samples["fwd_return"].to_numpy(dtype=np.float64, na_value=np.nan)[order],
        )

    def __len__(self) -> int:
        return len(self.date)

    def without_features(self) -> TrainingData:
        """The same keys and targets with an empty feature block (the block's memory can be released)."""
        return replace(self, block=np.empty((len(self.names), 0), dtype=np.float32))

    def rows(self, run: slice | np.ndarray) -> pd.DataFrame:
        """Feature rows with their column names: a view of the block for a slice, a copy for positions."""
        return pd.DataFrame(self.block[:, run].T, columns=list(self.names), copy=False)

    def run(self, dates: np.ndarray) -> slice:
        """The rows dated on `dates`, a contiguous run of the date axis (a fold's training or validation dates)."""
        if len(dates) == 0:
            return slice(0, 0)
        lo = int(np.searchsorted(self.date, np.datetime64(dates[0], "ns"), side="left"))
        hi = int(np.searchsorted(self.date, np.datetime64(dates[-1], "ns"), side="right"))
        if len(np.unique(self.date[lo:hi])) != len(dates):
            raise ValueError(f"fold dates {dates[0]}..{dates[-1]} are not a contiguous run of the sample dates")
        return slice(lo, hi)


class LearnerFitError(RuntimeError):
    """A base learner failed to fit; the message names the learner, its kind and the fold."""


def _fit(
    spec: LearnerSpec, data: TrainingData, run: slice, seed: int, max_train_rows: int | None, where: str
) -> object:
    """fit_learner on a run of rows (at most `max_train_rows`), failing with which learner broke and where."""
    labels = data.label[run]
    if max_train_rows is not None and (spec.max_rows is None or spec.max_rows > max_train_rows):
        spec = replace(spec, max_rows=max_train_rows)
    try:
        return fit_learner(spec, data.rows(run), labels, seed)
    except Exception as exc:
        raise LearnerFitError(
            f"learner {spec.name!r} ({spec.kind}) failed in {where} on {len(labels):,} rows: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _fit_meta(
    base: dict[str, np.ndarray],
    specs: tuple[LearnerSpec, ...],
    data: TrainingData,
    run: slice,
    seed: int,
    max_rows: int | None,
) -> MetaLearner:
    """The meta-learner on a run of out-of-fold rows, a seeded sample of `max_rows` of them if capped."""
    rows = np.arange(len(data))[run]
    if max_rows is not None and len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    return MetaLearner.fit(meta_inputs([base[s.name][rows] for s in specs]), data.label[rows])


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


def _oof_frame(
    data: TrainingData, fold_of: np.ndarray, probas: dict[str, np.ndarray], runs: dict[str, slice]
) -> pd.DataFrame:
    """Long out-of-fold frame: each model's probabilities (float32) on the run of rows it scored.

    Every column is one concatenation of runs, used as is; symbol and model are categoricals (a 2-byte
    and a 1-byte code a row instead of an 8-byte pointer each: 0.6 GB less at 3,000 symbols' 52 M rows),
    so the frame costs about 24 bytes a row.
    """
    models = list(probas)

    def stacked(values: np.ndarray) -> np.ndarray:
        return np.concatenate([values[runs[model]] for model in models])

    lengths = [runs[model].stop - runs[model].start for model in models]
    symbol_codes, symbols = pd.factorize(data.symbol, sort=True)
    model_codes = np.repeat(np.arange(len(models), dtype=np.int8), lengths)
    columns = {
        "symbol": pd.Categorical.from_codes(stacked(symbol_codes.astype(np.int32)), categories=symbols),
        "date": stacked(data.date),
        "model": pd.Categorical.from_codes(model_codes, categories=models),
        "fold": stacked(fold_of),
        **{c: np.concatenate([probas[model][runs[model], k] for model in models]) for k, c in enumerate(PROBA_COLUMNS)},
    }
    return pd.DataFrame(columns, copy=False)  # no copy, no consolidation: a second copy was this frame's peak


def _proba_frame(proba: np.ndarray) -> pd.DataFrame:
    """Probabilities as a frame with the p_sell, p_hold, p_buy columns."""
    return pd.DataFrame(proba, columns=list(PROBA_COLUMNS))
