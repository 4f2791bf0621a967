"""The signal rule: a symbol is a BUY when p_buy >= min_probability and p_buy > p_sell, a SELL in the
mirror case, otherwise HOLD (a BUY/SELL tie is HOLD). The scanner emits it; the backtest enters on it.
"""

from __future__ import annotations

import numpy as np

from turbomode_dagster.models import CLASS_LABELS

SELL, HOLD, BUY = (CLASS_LABELS.index(label) for label in ("SELL", "HOLD", "BUY"))


def signal_classes(p_sell: np.ndarray, p_buy: np.ndarray, min_probability: float) -> np.ndarray:
    """Class index per row (SELL=0, HOLD=1, BUY=2) from the two directional probabilities."""
    p_sell, p_buy = np.asarray(p_sell, dtype=float), np.asarray(p_buy, dtype=float)
    chosen = np.full(p_buy.shape, HOLD)
    chosen[(p_buy >= min_probability) & (p_buy > p_sell)] = BUY
    chosen[(p_sell >= min_probability) & (p_sell > p_buy)] = SELL
    return chosen


def decide(proba: np.ndarray, min_probability: float) -> tuple[np.ndarray, np.ndarray]:
    """Class index per row of an n x 3 (p_sell, p_hold, p_buy) array, and that class's probability."""
    proba = np.asarray(proba, dtype=float)
    chosen = signal_classes(proba[:, SELL], proba[:, BUY], min_probability)
    return chosen, proba[np.arange(len(proba)), chosen]
