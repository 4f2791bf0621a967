"""One current window against a baseline: PSI, KL and KS per feature and prediction column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from turbomode_dagster.drift.baseline import PREDICTION_COLUMNS, DriftBaseline, Reference
from turbomode_dagster.drift.binning import bin_counts
from turbomode_dagster.drift.statistics import kl_divergence, ks_test, psi

WINDOW_COLUMNS = [
    "column", "kind", "rows", "psi", "kl_divergence", "ks_statistic", "ks_pvalue",
    "psi_threshold", "kl_threshold", "ks_threshold", "exceeded",
]  # fmt: skip


def compare(reference: Reference, values: np.ndarray) -> dict[str, float]:
    """The three statistics of `values` against one column's reference, and whether any is exceeded."""
    values = np.asarray(values, dtype=np.float64)
    counts = bin_counts(values, np.asarray(reference.edges))
    reference_counts = np.asarray(reference.counts)
    psi_value, kl_value = psi(reference_counts, counts), kl_divergence(reference_counts, counts)
    ks_value, ks_p = ks_test(np.asarray(reference.sample), values)
    levels = reference.thresholds
    return {
        "rows": len(values),
        "psi": psi_value,
        "kl_divergence": kl_value,
        "ks_statistic": ks_value,
        "ks_pvalue": ks_p,
        "psi_threshold": levels.psi,
        "kl_threshold": levels.kl,
        "ks_threshold": levels.ks,
        "exceeded": levels.exceeded(psi_value, kl_value, ks_value),
    }


def window_statistics(baseline: DriftBaseline, features: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Statistics of one window: `features` holds the baseline's feature columns, `predictions` p_buy/p_sell."""
    missing = [c for c in baseline.features if c not in features.columns]
    if missing:
        raise KeyError(f"the current window lacks features the baseline of {baseline.model_version} has: {missing}")
    rows = [
        {"column": column, "kind": "feature", **compare(reference, features[column].to_numpy())}
        for column, reference in baseline.features.items()
    ]
    rows += [
        {
            "column": column,
            "kind": "prediction",
            **compare(baseline.predictions[column], predictions[column].to_numpy()),
        }
        for column in PREDICTION_COLUMNS
    ]
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


def window_sessions(sessions: list[str], end: str, length: int) -> list[str]:
    """The `length` sessions ending at `end` (inclusive), from an ordered list of sessions."""
    position = sessions.index(end)
    if position + 1 < length:
        raise ValueError(f"a {length}-session window ending {end} needs {length - position - 1} more earlier sessions")
    return sessions[position + 1 - length : position + 1]
