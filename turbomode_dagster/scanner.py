"""Task 3's core: score one session's bars with the champion and turn probabilities into signals.

The ensemble is calibrated to the true class frequencies, so HOLD is nearly always the most likely
class; a signal therefore asks whether a move is likely enough to act on. The rule itself
(`signals.decide`, shared with the backtest's entry rule) makes a BUY when p_buy is at least
`min_probability` and above p_sell, a SELL in the mirror case, otherwise HOLD; a signal's
confidence is the chosen class's probability. Each signal carries the features that pushed the chosen
class most, from TreeSHAP averaged over the base learners that support it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from turbomode_dagster.models import CLASS_LABELS
from turbomode_dagster.models.ensemble import FittedEnsemble, predict
from turbomode_dagster.models.explain import contributions, ranked_contributions, supports_shap
from turbomode_dagster.signals import decide

PROBABILITIES = ["p_sell", "p_hold", "p_buy"]
PREDICTION_COLUMNS = ["symbol", "as_of_date", "target_date", "model_version", *PROBABILITIES]
SIGNAL_COLUMNS = ["symbol", "as_of_date", "target_date", "signal", "confidence", "model_version", "top_features"]


@dataclass(frozen=True)
class Scan:
    """One night's predictions and signals, and the universe symbols that could not be scored."""

    predictions: pd.DataFrame
    signals: pd.DataFrame
    missing: list[str]


def scan_session(
    features: pd.DataFrame,
    universe: list[str],
    ensemble: FittedEnsemble,
    model_version: str,
    as_of: str,
    target: str,
    min_probability: float,
    top_k: int,
) -> Scan:
    """Predictions and signals for every universe symbol with a feature row dated `as_of`."""
    day = features[(features["date"] == pd.Timestamp(as_of)) & features["symbol"].isin(universe)]
    day = day.sort_values("symbol").reset_index(drop=True)
    missing = sorted(set(universe) - set(day["symbol"]))
    if day.empty:
        return Scan(_empty(PREDICTION_COLUMNS), _empty(SIGNAL_COLUMNS), missing)
    proba = predict(ensemble, day)
    keys = pd.DataFrame({"symbol": day["symbol"], "as_of_date": as_of, "target_date": target})
    predictions = keys.assign(model_version=model_version, **{c: proba[c].to_numpy() for c in PROBABILITIES})
    chosen, confidence = decide(proba[PROBABILITIES].to_numpy(), min_probability)
    explained = explain_rows(ensemble, day, chosen, top_k)
    signals = keys.assign(
        signal=[CLASS_LABELS[c] for c in chosen],
        confidence=confidence,
        model_version=model_version,
        top_features=explained,
    )
    return Scan(predictions[PREDICTION_COLUMNS], signals[SIGNAL_COLUMNS], missing)


def explain_rows(ensemble: FittedEnsemble, rows: pd.DataFrame, classes: np.ndarray, top_k: int) -> list[list[dict]]:
    """Per row, the top_k features by |mean TreeSHAP contribution| toward its class, signed."""
    inputs = rows.loc[:, list(ensemble.feature_names)]
    explainable = [m for m in ensemble.base_models.values() if supports_shap(m)]
    if not explainable:
        return [[] for _ in range(len(rows))]
    picked = np.arange(len(rows)), np.asarray(classes, dtype=int)
    mean = np.mean([contributions(m, inputs)[picked][:, :-1] for m in explainable], axis=0)
    return ranked_contributions(mean, list(ensemble.feature_names), top_k, digits=6)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)
