"""Base learners: what each one is (`LearnerSpec`), the default family of eight, and how to fit one.

A spec names an XGBoost configuration (`kind="xgboost"`) or a scikit-learn-API classifier by dotted
import path (`kind="lightgbm.LGBMClassifier"`) from an allow-listed package only: a config names no
other code to import or call (`learner_class`, `check_learner`). XGBoost reads NaN as missing; other classifiers get a
median imputer in front. Every fit uses balanced sample weights against class imbalance and a fixed seed.
A spec may cap its training rows (`max_rows`, a seeded sample without replacement): the learners whose
cost per row is highest (exact, approx, DART, coordinate-descent linear) or that bag anyway (the two
forests) stay bounded however long the history grows, and the cap adds bagging-style diversity.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import ClassifierMixin, is_classifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import has_fit_parameter

from turbomode_dagster.models import N_CLASSES

XGBOOST = "xgboost"
DEFAULT_THREADS = 2
# The top-level packages a dotted `kind` may come from: nothing else is ever imported for a config.
KIND_PACKAGES = ("xgboost", "sklearn", "lightgbm", "catboost")
# Parameters that size memory or time, bounded for every kind: XGBoost allocated 22 GB checking a
# max_bin of 1.45e9, and a tree count of 10**9 validates but never finishes training. None keeps the
# library's default (scikit-learn's unlimited max_depth, for one).
SIZE_LIMITS = {
    "n_estimators": (1, 10_000),
    "num_parallel_tree": (1, 1_000),
    "max_bin": (2, 4_096),
    "max_depth": (0, 64),
    "max_leaves": (0, 65_536),
    "n_jobs": (-1, 256),
}
PROBE_CUTS = ("n_estimators", "num_parallel_tree", "n_jobs")  # cut to 1 for XGBoost's one-tree check


@dataclass(frozen=True)
class LearnerSpec:
    """One base learner: a unique name, an XGBoost or dotted-path kind, its parameters, a row cap."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    max_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (part of the model version hash and the manifest)."""
        return {"name": self.name, "kind": self.kind, "params": dict(self.params), "max_rows": self.max_rows}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LearnerSpec:
        """The inverse of `to_dict`."""
        return cls(raw["name"], raw["kind"], dict(raw["params"]), raw.get("max_rows"))


def _xgb(name: str, max_rows: int | None = None, **params: Any) -> LearnerSpec:
    """An XGBoost spec on the shared thread budget."""
    return LearnerSpec(name, XGBOOST, {"n_jobs": DEFAULT_THREADS, **params}, max_rows)


# Diverse by construction: three tree-construction algorithms, dropout boosting, a linear booster,
# a bagged forest, extremely randomised trees and a stump-like learner. Sizes keep one fit of all
# eight on ~200k rows x 50 features to about half a minute on two cores.
DEFAULT_LEARNERS: tuple[LearnerSpec, ...] = (
    _xgb(
        "xgb_hist",
        tree_method="hist",
        n_estimators=60,
        learning_rate=0.1,
        max_depth=4,
        min_child_weight=20,
        subsample=0.8,
        colsample_bytree=0.8,
        max_bin=64,
    ),
    _xgb(
        "xgb_approx",
        max_rows=8_000,
        tree_method="approx",
        n_estimators=15,
        learning_rate=0.2,
        max_depth=3,
        subsample=0.8,
        colsample_bynode=0.7,
        max_bin=64,
    ),
    _xgb(
        "xgb_exact",
        max_rows=8_000,
        tree_method="exact",
        n_estimators=15,
        learning_rate=0.2,
        max_depth=3,
        subsample=0.7,
        colsample_bytree=0.5,
    ),
    _xgb(
        "xgb_dart",
        max_rows=8_000,
        booster="dart",
        tree_method="hist",
        n_estimators=15,
        learning_rate=0.2,
        max_depth=3,
        rate_drop=0.1,
        skip_drop=0.5,
    ),
    # coord_descent, not the default shotgun updater: shotgun's hogwild updates are not reproducible.
    _xgb(
        "xgb_linear",
        max_rows=50_000,
        booster="gblinear",
        updater="coord_descent",
        n_estimators=20,
        learning_rate=0.5,
    ),
    _xgb(
        "xgb_rf",
        max_rows=100_000,
        tree_method="hist",
        n_estimators=1,
        num_parallel_tree=25,
        learning_rate=1.0,
        max_depth=6,
        min_child_weight=10,
        subsample=0.632,
        colsample_bynode=0.5,
    ),
    LearnerSpec(
        "extra_trees",
        "sklearn.ensemble.ExtraTreesClassifier",
        {"n_estimators": 30, "max_depth": 7, "min_samples_leaf": 100, "max_features": 0.2, "n_jobs": DEFAULT_THREADS},
        max_rows=100_000,
    ),
    _xgb("xgb_shallow", tree_method="hist", n_estimators=30, learning_rate=0.2, max_depth=2, max_bin=64),
)


def with_threads(specs: tuple[LearnerSpec, ...], threads: int) -> tuple[LearnerSpec, ...]:
    """The same specs with every learner's thread count (`n_jobs`) set to `threads`."""
    return tuple(replace(spec, params={**spec.params, "n_jobs": threads}) for spec in specs)


def learner_class(kind: str) -> type:
    """The classifier class `kind` names; ValueError unless it is a public classifier of an allowed package.

    The package is checked before anything is imported, and the class before anything is called.
    """
    if kind == XGBOOST:
        return xgb.XGBClassifier
    module_name, _, class_name = kind.rpartition(".")
    parts = kind.split(".")
    if not module_name or not all(part.isidentifier() for part in parts):
        raise ValueError(f"{kind!r}: use 'xgboost' or a dotted path such as 'sklearn.ensemble.ExtraTreesClassifier'")
    if parts[0] not in KIND_PACKAGES:
        raise ValueError(f"{kind!r}: classifiers may only come from {', '.join(KIND_PACKAGES)}, not {parts[0]!r}")
    if any(part.startswith("_") for part in parts):
        raise ValueError(f"{kind!r}: name the public path, without _private parts")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an allow-listed package that is absent or fails to import
        raise ValueError(f"{kind!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ValueError(f"{kind!r}: {module_name} has no class {class_name!r}")
    if found.__module__.split(".")[0] not in KIND_PACKAGES:
        raise ValueError(f"{kind!r}: {class_name} is defined in {found.__module__}, outside {', '.join(KIND_PACKAGES)}")
    if not (issubclass(found, ClassifierMixin) or getattr(found, "_estimator_type", None) == "classifier"):
        raise ValueError(f"{kind!r} is not a classifier")
    return found


def check_learner(kind: str, params: Mapping[str, Any]) -> None:
    """Construct `kind` with `params` and check them (XGBoost by a one-tree fit); ValueError saying what is wrong."""
    problem = _learner_problem(kind, json.dumps(params, sort_keys=True))
    if problem:
        raise ValueError(problem)


@lru_cache(maxsize=256)
def _learner_problem(kind: str, params_json: str) -> str | None:
    """Why `kind` cannot be built with these params (None when it can), cached: configs are loaded often."""
    cls = learner_class(kind)
    params = json.loads(params_json)
    for name, (low, high) in SIZE_LIMITS.items():
        value = params.get(name)
        if value is not None and not (type(value) is int and low <= value <= high):
            return f"{name} must be an integer in {low}..{high}, got {value!r}"
    if kind == XGBOOST:
        params = {**params, "objective": "multi:softprob"}
    try:
        estimator = cls(**params)
        if not is_classifier(estimator) or not hasattr(estimator, "predict_proba"):
            return f"{kind} with these params is not a classifier with predict_proba"
        if isinstance(estimator, xgb.XGBModel):
            _fit_one_tree(estimator)
        elif hasattr(estimator, "_validate_params"):
            estimator._validate_params()  # scikit-learn's own check of every constructor parameter
    except Exception as exc:  # whatever the library raises for a bad parameter
        return f"{cls.__name__} rejects these params: {_library_message(exc)}"
    return None


def _library_message(exc: Exception) -> str:
    """A library's error on one line, without XGBoost's timestamp, source location and stack trace."""
    text = " ".join(str(exc).split()).split(" Stack trace:")[0]
    return re.sub(r"^\[[0-9:]+\] \S+: ", "", text)[:300]


def _fit_one_tree(model: xgb.XGBModel) -> None:
    """XGBoost checks names and values only when it trains: fit one tree on a tiny 3-class sample.

    Positive tree and thread counts are cut to one; whatever else was given is trained as given.
    """
    given = model.get_params()
    one = {name: 1 for name in PROBE_CUTS if type(given.get(name)) is int and given[name] > 0}
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(30, 3)), np.arange(30) % N_CLASSES
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.set_params(**one).fit(features, labels)
    unused = [str(w.message) for w in caught if "are not used" in str(w.message)]
    if unused:
        names = unused[0][unused[0].index("{") : unused[0].index("}") + 1]
        raise ValueError(f"unknown parameter(s) {names}")


def build_learner(spec: LearnerSpec, seed: int) -> ClassifierMixin:
    """An unfitted estimator for `spec`, seeded with `seed` (which overrides any seed in the params)."""
    if spec.kind == XGBOOST:
        return xgb.XGBClassifier(**{**spec.params, "objective": "multi:softprob", "random_state": seed})
    try:
        cls = learner_class(spec.kind)
    except ValueError as exc:
        raise ValueError(f"learner {spec.name!r}: {exc}") from None
    estimator = cls(**spec.params)
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=seed)
    return Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("model", estimator)])


def fit_learner(spec: LearnerSpec, features: pd.DataFrame, labels: np.ndarray, seed: int) -> ClassifierMixin:
    """Fit `spec` on (a seeded row sample of) the data with balanced class weights; return the model."""
    labels = np.asarray(labels)
    if spec.max_rows is not None and len(labels) > spec.max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(labels), spec.max_rows, replace=False))
        features, labels = features.iloc[rows], labels[rows]
    present = np.unique(labels)
    if not np.array_equal(present, np.arange(N_CLASSES)):
        raise ValueError(
            f"learner {spec.name!r}: training data must hold every class 0..{N_CLASSES - 1}, got {present}"
        )
    weights = compute_sample_weight("balanced", labels)
    model = build_learner(spec, seed)
    model.fit(features, labels, **_weight_argument(model, weights))
    if isinstance(model, Pipeline) and "n_jobs" in model.steps[-1][1].get_params():
        # scikit-learn forests add tree outputs in thread-completion order; one prediction thread keeps
        # probabilities bit-for-bit reproducible.
        model.steps[-1][1].set_params(n_jobs=1)
    return model


def _weight_argument(model: ClassifierMixin, weights: np.ndarray) -> dict[str, np.ndarray]:
    """The fit keyword that passes sample weights, or none for a classifier that takes no weights."""
    if isinstance(model, Pipeline):
        final = model.steps[-1]
        return {f"{final[0]}__sample_weight": weights} if has_fit_parameter(final[1], "sample_weight") else {}
    return {"sample_weight": weights}


def learner_proba(model: ClassifierMixin, features: pd.DataFrame) -> np.ndarray:
    """Class probabilities (n x 3, float64, rows summing to 1) from a fitted base learner."""
    proba = np.asarray(model.predict_proba(features), dtype=np.float64)
    if proba.shape[1] != N_CLASSES:
        raise ValueError(f"expected {N_CLASSES} probability columns, got {proba.shape[1]}")
    return proba / proba.sum(axis=1, keepdims=True)


def is_xgboost(model: object) -> bool:
    """Whether a fitted learner is an XGBoost model (native TreeSHAP and save_model apply)."""
    return isinstance(model, xgb.XGBModel)
