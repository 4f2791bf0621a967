"""The line beside the ensemble's metrics: why its balanced accuracy is low, and what promotion judges.

The meta-learner is fitted unweighted, so its probabilities are calibrated to the class mix, where HOLD
is the majority: its most probable class is rarely BUY or SELL, and balanced accuracy (the mean of the
per-class recalls of that argmax) sits below the base learners', which are trained with balanced class
weights. Neither the scanner nor promotion uses the argmax; this note says so with the night's numbers.
"""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.models import PROBA_COLUMNS
from turbomode_dagster.models.ensemble import ENSEMBLE
from turbomode_dagster.models.registry import MIN_IC_T


def directional_argmax_share(oof: pd.DataFrame) -> pd.Series:
    """Per model, the share of the ensemble's out-of-fold rows whose most probable class is BUY or SELL.

    Column-wise (tens of millions of rows at thousands of symbols): the argmax is HOLD exactly when
    p_hold beats p_sell and is not below p_buy (argmax takes the first of tied maxima).
    """
    scored = oof["fold"].isin(oof.loc[oof["model"] == ENSEMBLE, "fold"].unique()).to_numpy()
    p_sell, p_hold, p_buy = (oof[column].to_numpy()[scored] for column in PROBA_COLUMNS)
    directional = ~((p_hold > p_sell) & (p_hold >= p_buy))
    return pd.Series(directional).groupby(oof["model"].to_numpy()[scored], sort=False).mean()


def balanced_accuracy_note(metrics: pd.DataFrame, oof: pd.DataFrame) -> str:
    """Markdown: the ensemble's balanced accuracy beside its learners', why, and the metric promotion uses.

    `metrics` is indexed by model (with balanced_accuracy), `oof` the out-of-fold probabilities of every model.
    """
    share = directional_argmax_share(oof)
    learners = [m for m in share.index if m != ENSEMBLE]
    ensemble_accuracy = float(metrics.loc[ENSEMBLE, "balanced_accuracy"])
    learner_accuracy = float(metrics.loc[learners, "balanced_accuracy"].mean())
    return (
        f"**Balanced accuracy {ensemble_accuracy:.2f} (base learners {learner_accuracy:.2f} on average) is "
        f"expected.** The meta-learner is calibrated to the class mix, where HOLD is the majority, so its most "
        f"probable class is BUY or SELL on {share[ENSEMBLE]:.0%} of out-of-fold rows against "
        f"{share[learners].mean():.0%} for the base learners (trained with balanced class weights); balanced "
        f"accuracy scores that argmax. Signals do not use it: they compare p_buy and p_sell with "
        f"`scanner.min_probability`. **Promotion uses out-of-sample log loss** (it must beat the class prior's "
        f"and not be worse than the champion's) and a rank IC above {MIN_IC_T:g} Newey-West standard errors; "
        f"balanced accuracy plays no part."
    )
