"""SHAP importance as a person reads it: the ensemble's top features per class, and each learner's in one line.

The ensemble-level importance of a feature for a class is the mean, over the base learners that have
SHAP values, of each learner's mean |SHAP| (log-odds) for that class: every learner counts once,
whatever its meta-learner weight, so the table says what the committee as a whole looks at.
"""

from __future__ import annotations

import pandas as pd

CLASS_ORDER = ("BUY", "SELL", "HOLD")  # the actionable classes first
ENSEMBLE_COLUMNS = ["class_label", "rank", "feature", "mean_abs_shap"]
LEARNER_COLUMNS = ["class_label", "learner", "top_features"]


def ensemble_top_features(importance: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """class_label, rank, feature, mean_abs_shap: the k largest learner-averaged mean |SHAP| per class.

    `importance` has the shap_logs columns (model_name, class_label, feature, mean_abs_shap, rank).
    """
    if importance.empty:
        return pd.DataFrame(columns=ENSEMBLE_COLUMNS)
    mean = importance.groupby(["class_label", "feature"], as_index=False)["mean_abs_shap"].mean()
    parts = []
    for label in CLASS_ORDER:
        part = mean[mean["class_label"] == label].sort_values(
            ["mean_abs_shap", "feature"], ascending=[False, True], kind="mergesort"
        )
        parts.append(part.head(k).assign(rank=range(1, min(k, len(part)) + 1)))
    return pd.concat(parts, ignore_index=True)[ENSEMBLE_COLUMNS]


def learner_top_features(importance: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """class_label, learner, top_features ('rsi_14 0.120, ret_5d 0.040, ...'): one row per class and learner,
    BUY then SELL then HOLD, learners in their configured order, so every learner fits on one screen."""
    if importance.empty:
        return pd.DataFrame(columns=LEARNER_COLUMNS)
    learners = list(dict.fromkeys(importance["model_name"]))
    rows = []
    for label in CLASS_ORDER:
        for learner in learners:
            ranked = importance[(importance["class_label"] == label) & (importance["model_name"] == learner)]
            top = ranked.sort_values("rank").head(k)
            text = ", ".join(f"{f} {v:.3f}" for f, v in zip(top["feature"], top["mean_abs_shap"], strict=True))
            rows.append((label, learner, text))
    return pd.DataFrame(rows, columns=LEARNER_COLUMNS)
