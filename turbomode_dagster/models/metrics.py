"""Out-of-sample metrics for SELL/HOLD/BUY probabilities, beside two naive baselines.

Per model: log loss, balanced accuracy and macro F1 of the most probable class, one-vs-rest AUC
(macro over classes), and the rank information coefficient of the score `p_buy - p_sell` against
`fwd_return`. The reported `rank_ic` is the mean over dates of the cross-sectional Spearman
correlation (what a daily long/short ranking earns); `rank_ic_se` is its Newey-West standard error
with `horizon - 1` lags, because overlapping forward windows correlate neighbouring dates' ICs;
`rank_ic_pooled` is one Spearman correlation over all rows, for reference.

Baselines, scored on the same rows: `always_hold` puts 1 - 2 * ALWAYS_HOLD_EPS on HOLD (so its log
loss is finite and shows the price of a confident naive call) and `class_prior` predicts each fold's
training class frequencies. A constant score ranks nothing, so both baselines' rank ICs are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from turbomode_dagster.models import N_CLASSES

ALWAYS_HOLD = "always_hold"
CLASS_PRIOR = "class_prior"
ALWAYS_HOLD_EPS = 0.005
PROBABILITY_FLOOR = 1e-15
MIN_NAMES_PER_DATE = 3


def classification_metrics(
    proba: np.ndarray,
    labels: np.ndarray,
    fwd_returns: np.ndarray,
    dates: np.ndarray,
    horizon: int,
) -> dict[str, float]:
    """All metrics for one model's probabilities (n x 3) on labelled, dated rows."""
    proba = np.asarray(proba, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    predicted = proba.argmax(axis=1)
    picked = proba[np.arange(len(labels)), labels]
    daily = per_date_rank_ic(proba[:, 2] - proba[:, 0], fwd_returns, dates)
    mean_ic = float(daily.mean()) if len(daily) else np.nan
    se = newey_west_se(daily.to_numpy(), max(horizon - 1, 0))
    return {
        "n_samples": float(len(labels)),
        "n_dates": float(len(np.unique(dates))),
        "log_loss": float(-np.mean(np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0)))),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, labels=range(N_CLASSES), average="macro", zero_division=0)),
        "auc_ovr": ovr_auc(proba, labels),
        "rank_ic": mean_ic,
        "rank_ic_se": se,
        "rank_ic_t": mean_ic / se if se > 0 else np.nan,
        "rank_ic_pooled": pooled_rank_ic(proba[:, 2] - proba[:, 0], fwd_returns),
    }


def ovr_auc(proba: np.ndarray, labels: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes that occur both as positives and negatives."""
    aucs = [roc_auc_score(labels == k, proba[:, k]) for k in range(N_CLASSES) if 0 < np.sum(labels == k) < len(labels)]
    return float(np.mean(aucs)) if aucs else np.nan


def per_date_rank_ic(score: np.ndarray, fwd_returns: np.ndarray, dates: np.ndarray) -> pd.Series:
    """Spearman correlation of score and forward return across names, one value per date.

    Dates with fewer than MIN_NAMES_PER_DATE names, or a constant score or return, are left out.
    """
    frame = pd.DataFrame({"date": np.asarray(dates), "s": score, "r": fwd_returns}).dropna()
    frame = frame[frame.groupby("date")["s"].transform("size") >= MIN_NAMES_PER_DATE]
    ranks = frame.groupby("date")[["s", "r"]].rank()
    centred = ranks - ranks.groupby(frame["date"]).transform("mean")
    sums = (
        pd.DataFrame(
            {
                "sr": centred["s"] * centred["r"],
                "ss": centred["s"] ** 2,
                "rr": centred["r"] ** 2,
                "date": frame["date"],
            }
        )
        .groupby("date")[["sr", "ss", "rr"]]
        .sum()
    )
    denominator = np.sqrt(sums["ss"] * sums["rr"])
    return (sums["sr"] / denominator.where(denominator > 0)).dropna()


def pooled_rank_ic(score: np.ndarray, fwd_returns: np.ndarray) -> float:
    """One Spearman correlation over all rows (NaN for a constant score)."""
    frame = pd.DataFrame({"s": score, "r": fwd_returns}).dropna()
    if frame["s"].nunique() < 2 or frame["r"].nunique() < 2:
        return np.nan
    return float(frame["s"].rank().corr(frame["r"].rank()))


def newey_west_se(values: np.ndarray, lags: int) -> float:
    """Standard error of the mean of a serially correlated series (Bartlett-weighted autocovariances)."""
    n = len(values)
    if n < 2:
        return np.nan
    centred = values - values.mean()
    variance = centred @ centred / n
    for lag in range(1, min(lags, n - 1) + 1):
        variance += 2 * (1 - lag / (lags + 1)) * (centred[lag:] @ centred[:-lag]) / n
    return float(np.sqrt(max(variance, 0.0) / n))


def always_hold_proba(n: int) -> np.ndarray:
    """The always-HOLD baseline's probabilities for n rows."""
    row = np.array([ALWAYS_HOLD_EPS, 1.0 - 2 * ALWAYS_HOLD_EPS, ALWAYS_HOLD_EPS])
    return np.tile(row, (n, 1))


def class_prior(train_labels: np.ndarray) -> np.ndarray:
    """Training class frequencies (length 3): the class-prior baseline's constant prediction."""
    counts = np.bincount(np.asarray(train_labels).astype(int), minlength=N_CLASSES).astype(np.float64)
    return counts / counts.sum()


def metrics_table(
    probas: dict[str, np.ndarray],
    labels: np.ndarray,
    fwd_returns: np.ndarray,
    dates: np.ndarray,
    prior_proba: np.ndarray,
    horizon: int,
) -> pd.DataFrame:
    """One row of metrics per model, then the two baselines, all scored on the same n rows.

    `probas` maps each model to its n x 3 probabilities on the n labelled, dated rows that `labels`,
    `fwd_returns` and `dates` describe; `prior_proba` (n x 3) is the class-prior baseline's prediction
    on each row (its fold's training class frequencies). Arrays aligned row for row, so scoring never
    builds or joins a frame of all models' rows.
    """
    rows = {name: classification_metrics(proba, labels, fwd_returns, dates, horizon) for name, proba in probas.items()}
    rows[ALWAYS_HOLD] = classification_metrics(always_hold_proba(len(labels)), labels, fwd_returns, dates, horizon)
    rows[CLASS_PRIOR] = classification_metrics(prior_proba, labels, fwd_returns, dates, horizon)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table
