"""The night's signals as a person reads them: BUY and SELL by confidence first, then HOLD (pure)."""

from __future__ import annotations

import pandas as pd

SIGNALS = ("BUY", "SELL", "HOLD")
HOLD = "HOLD"
PREVIEW_COLUMNS = ["symbol", "signal", "confidence", "top_features"]


def signal_preview(signals: pd.DataFrame, limit: int, features: int = 3) -> pd.DataFrame:
    """symbol, signal, confidence, top_features (the first `features`, as text): the actionable BUY and SELL
    rows by confidence, highest first, then HOLD by confidence; at most `limit` rows, ties broken by symbol."""
    shown = signals.assign(
        top_features=signals["top_features"].map(lambda top: features_text(top[:features])),
        confidence=signals["confidence"].round(3),
        actionable=(signals["signal"] != HOLD).astype(int),
    )
    shown = shown.sort_values(["actionable", "confidence", "symbol"], ascending=[False, False, True], kind="mergesort")
    return shown[PREVIEW_COLUMNS].head(limit).reset_index(drop=True)


def signal_counts(signals: pd.DataFrame) -> dict[str, int]:
    """How many BUY, SELL and HOLD signals, every class present (0 when none), in that order."""
    counts = signals["signal"].value_counts()
    return {name: int(counts.get(name, 0)) for name in SIGNALS}


def features_text(features: list[dict]) -> str:
    """A signal's top SHAP features as one line: 'rsi_14 +0.120, ret_5d -0.040'."""
    return ", ".join(f"{f['feature']} {f['contribution']:+.3f}" for f in features)
