"""Performance drift: the skill of predictions whose label window has matured, against out-of-sample skill.

A change in what predicts returns can leave every feature's distribution intact, so distributions
alone would miss it. Matured predictions (made on sessions whose forward window has closed) are
scored as in training: rank IC of p_buy - p_sell (mean of daily Spearman correlations, Newey-West
standard error) and log loss. The drop in rank IC is judged in standard errors of the difference.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from turbomode_dagster.models import PROBA_COLUMNS
from turbomode_dagster.models.metrics import classification_metrics


def matured_skill(matured: pd.DataFrame, horizon: int) -> dict[str, float]:
    """Rank IC (and its standard error), log loss and session count of matured, labelled predictions."""
    if matured.empty:
        return {"n_dates": 0.0, "rank_ic": math.nan, "rank_ic_se": math.nan, "log_loss": math.nan}
    metrics = classification_metrics(
        matured[list(PROBA_COLUMNS)].to_numpy(),
        matured["label"].to_numpy(),
        matured["fwd_return"].to_numpy(),
        matured["date"].to_numpy(),
        horizon,
    )
    return {key: metrics[key] for key in ("n_dates", "rank_ic", "rank_ic_se", "log_loss")}


def ic_drop_t(matured: dict[str, float], out_of_sample: dict[str, float]) -> float:
    """(matured IC - out-of-sample IC) in standard errors of the difference; NaN when either is unknown."""
    se = math.hypot(matured.get("rank_ic_se", math.nan), out_of_sample.get("rank_ic_se", math.nan))
    if not np.isfinite(se) or se == 0:
        return math.nan
    return (matured["rank_ic"] - out_of_sample["rank_ic"]) / se
