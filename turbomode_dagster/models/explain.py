"""SHAP explanations from XGBoost's native TreeSHAP: global importance per model and class, per-row drivers.

`Booster.predict(..., pred_contribs=True)` returns, for a 3-class model, an (n, 3, n_features + 1)
array whose last column is the bias; per class, contributions plus bias equal the raw margin. The
same call gives exact linear contributions for gblinear and works for DART and forest modes. Learners
that are not XGBoost (an sklearn pipeline, say) have no native TreeSHAP here: they are skipped, and
`supports_shap` says so, rather than paying for a model-agnostic explainer in a nightly job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from turbomode_dagster.models import CLASS_LABELS
from turbomode_dagster.models.learners import is_xgboost

SHAP_ROWS = 2_000
IMPORTANCE_COLUMNS = ["model_name", "class_label", "feature", "mean_abs_shap", "rank"]


def supports_shap(model: object) -> bool:
    """Whether `model` has native TreeSHAP contributions (XGBoost learners only)."""
    return is_xgboost(model)


def contributions(model: xgb.XGBModel, rows: pd.DataFrame) -> np.ndarray:
    """SHAP contributions (n x classes x (features + 1), bias last) in the margin (log-odds) space."""
    matrix = xgb.DMatrix(rows, missing=np.nan)
    return model.get_booster().predict(matrix, pred_contribs=True)


def global_importance(
    model: object, model_name: str, rows: pd.DataFrame, max_rows: int = SHAP_ROWS, seed: int = 0
) -> pd.DataFrame:
    """Mean |SHAP| per class and feature on at most `max_rows` seeded rows, ranked 1 = largest.

    Empty (with the usual columns) for a learner without native TreeSHAP.
    """
    if not supports_shap(model) or rows.empty:
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    rows = _drawn(rows, max_rows, seed)
    mean_abs = np.abs(contributions(model, rows)[:, :, :-1]).mean(axis=0)
    parts = []
    for k, label in enumerate(CLASS_LABELS):
        part = pd.DataFrame({"feature": list(rows.columns), "mean_abs_shap": mean_abs[k].astype(np.float64)})
        part = part.sort_values(["mean_abs_shap", "feature"], ascending=[False, True], kind="mergesort")
        parts.append(part.assign(model_name=model_name, class_label=label, rank=np.arange(1, len(part) + 1)))
    return pd.concat(parts, ignore_index=True)[IMPORTANCE_COLUMNS]


def ensemble_importance(
    base_models: dict[str, object],
    rows: pd.DataFrame,
    max_rows: int = SHAP_ROWS,
    seed: int = 0,
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """`global_importance` for every base learner that supports SHAP, stacked, on the same rows.

    `features` (default: every column of `rows`) is picked after the rows are drawn, so a whole
    samples frame can be passed without copying its feature columns.
    """
    rows = _drawn(rows, max_rows, seed)
    if features is not None:
        rows = rows.loc[:, list(features)]
    parts = [global_importance(model, name, rows, max_rows, seed) for name, model in base_models.items()]
    kept = [part for part in parts if not part.empty]
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=IMPORTANCE_COLUMNS)


def _drawn(rows: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """`rows`, or a seeded sample of `max_rows` of them in their original order."""
    if len(rows) <= max_rows:
        return rows
    return rows.iloc[np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))]


def top_contributions(
    model: xgb.XGBModel, rows: pd.DataFrame, k: int = 5, classes: Sequence[int] | None = None
) -> list[list[dict[str, Any]]]:
    """Per row, the k features with the largest |SHAP| toward one class, signed, largest first.

    The class is the model's own most probable class unless `classes` names one per row (the
    ensemble's call, for instance).
    """
    if classes is None:
        classes = np.asarray(model.predict_proba(rows)).argmax(axis=1)
    chosen = contributions(model, rows)[np.arange(len(rows)), np.asarray(classes, dtype=int), :-1]
    return ranked_contributions(chosen, list(rows.columns), k)


def ranked_contributions(
    chosen: np.ndarray, names: Sequence[str], k: int, digits: int | None = None
) -> list[list[dict[str, Any]]]:
    """Per row of an (n x features) contribution matrix, the k largest by |value|, signed, largest first."""
    order = np.argsort(-np.abs(chosen), axis=1, kind="stable")[:, :k]
    return [
        [
            {"feature": names[j], "contribution": float(row[j]) if digits is None else round(float(row[j]), digits)}
            for j in picks
        ]
        for row, picks in zip(chosen, order, strict=True)
    ]
