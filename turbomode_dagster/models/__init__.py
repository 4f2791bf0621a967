"""The model core: base learners, purged walk-forward validation, honest stacking, metrics, SHAP, registry.

Pure Python over pandas frames, with no Dagster imports. Labels are coded SELL=0, HOLD=1, BUY=2, and
every probability frame carries one column per class in that order (`PROBA_COLUMNS`).
"""

from __future__ import annotations

CLASS_LABELS: tuple[str, ...] = ("SELL", "HOLD", "BUY")
PROBA_COLUMNS: tuple[str, ...] = ("p_sell", "p_hold", "p_buy")
N_CLASSES = len(CLASS_LABELS)
