"""Summaries of the feature panel and the training labels that fit on an asset page (pure)."""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.features.labels import BUY, HOLD, SELL

LABEL_NAMES = {SELL: "SELL", HOLD: "HOLD", BUY: "BUY"}
KEY_COLUMNS = ("symbol", "date")
SUMMARY_COLUMNS = ["feature", "min", "median", "max"]


def class_shares(samples: pd.DataFrame) -> dict[str, float]:
    """Share of SELL, HOLD and BUY labels among `samples` (every class present, 0.0 when absent)."""
    shares = samples["label"].map(LABEL_NAMES).value_counts(normalize=True)
    return {name: float(shares.get(name, 0.0)) for name in LABEL_NAMES.values()}


def feature_summary(features: pd.DataFrame) -> pd.DataFrame:
    """One row per feature column: min, median and max over the rows, to 4 significant digits (blank when
    every value is missing). Transposed on purpose: a panel has dozens of feature columns, which no page
    shows side by side."""
    values = _feature_values(features)
    summary = pd.DataFrame({"feature": list(values.columns)})
    for column in SUMMARY_COLUMNS[1:]:
        summary[column] = getattr(values, column)().map(_significant).to_numpy()
    return summary


def missing_values(features: pd.DataFrame) -> int:
    """How many feature values are missing (NaN) in `features`, all feature columns together."""
    return int(_feature_values(features).isna().sum().sum())


def _feature_values(features: pd.DataFrame) -> pd.DataFrame:
    return features[[c for c in features.columns if c not in KEY_COLUMNS]].apply(pd.to_numeric, errors="coerce")


def _significant(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")
