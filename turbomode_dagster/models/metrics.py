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

from turbomode_dagster.models import N_CLASSES

ALWAYS_HOLD = "always_hold"
CLASS_PRIOR = "class_prior"
ALWAYS_HOLD_EPS = 0.005
PROBABILITY_FLOOR = 1e-15
MIN_NAMES_PER_DATE = 3


class ScoredRows:
    """The labelled, dated rows models are scored on, with what every model's metrics share done once.

    Ranking the forward returns within each date and over all rows is half of a rank IC; at 3,000
    symbols eleven models (the learners, the ensemble, two baselines) are scored on the same 4.5 M
    rows, so the returns' ranks are kept for every score whose missing values match.
    """

    def __init__(self, labels: np.ndarray, fwd_returns: np.ndarray, dates: np.ndarray, horizon: int) -> None:
        self.labels = np.asarray(labels).astype(int)
        self.fwd_returns = np.asarray(fwd_returns, dtype=np.float64)
        self.dates, self.date_codes = np.unique(np.asarray(dates), return_inverse=True)
        self.horizon = horizon
        self._return_ranks: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def metrics(self, proba: np.ndarray) -> dict[str, float]:
        """All metrics for one model's probabilities (n x 3) on these rows."""
        proba = np.asarray(proba, dtype=np.float64)
        labels = self.labels
        predicted = proba.argmax(axis=1)
        picked = proba[np.arange(len(labels)), labels]
        score = proba[:, 2] - proba[:, 0]
        daily = self.per_date_rank_ic(score)
        mean_ic = float(daily.mean()) if len(daily) else np.nan
        se = newey_west_se(daily.to_numpy(), max(self.horizon - 1, 0))
        confusion = np.bincount(labels * N_CLASSES + predicted, minlength=N_CLASSES**2).reshape(N_CLASSES, N_CLASSES)
        return {
            "n_samples": float(len(labels)),
            "n_dates": float(len(self.dates)),
            "log_loss": float(-np.mean(np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0)))),
            "balanced_accuracy": balanced_accuracy(confusion),
            "macro_f1": macro_f1(confusion),
            "auc_ovr": ovr_auc(proba, labels),
            "rank_ic": mean_ic,
            "rank_ic_se": se,
            "rank_ic_t": mean_ic / se if se > 0 else np.nan,
            "rank_ic_pooled": self.pooled_rank_ic(score),
        }

    def per_date_rank_ic(self, score: np.ndarray) -> pd.Series:
        """Spearman correlation of score and forward return across names, one value per date.

        Dates with fewer than MIN_NAMES_PER_DATE names, or a constant score or return, are left out.
        """
        score = np.asarray(score, dtype=np.float64)
        codes = self.date_codes
        valid = ~np.isnan(score) & ~np.isnan(self.fwd_returns)
        names = np.bincount(codes[valid], minlength=len(self.dates))
        kept = valid & (names[codes] >= MIN_NAMES_PER_DATE)
        returns = self._centred_return_ranks("per date", kept, codes)
        scores = _centred_ranks(score[kept], codes[kept])
        on = codes[kept]

        def summed(values: np.ndarray) -> np.ndarray:
            return np.bincount(on, weights=values, minlength=len(self.dates))

        sr, ss, rr = summed(scores * returns), summed(scores**2), summed(returns**2)
        denominator = np.sqrt(ss * rr)
        present = (names >= MIN_NAMES_PER_DATE) & (denominator > 0)
        return pd.Series(sr[present] / denominator[present], index=pd.Index(self.dates[present], name="date"))

    def pooled_rank_ic(self, score: np.ndarray) -> float:
        """One Spearman correlation over all rows (NaN for a constant score)."""
        score = np.asarray(score, dtype=np.float64)
        valid = ~np.isnan(score) & ~np.isnan(self.fwd_returns)
        everyone = np.zeros(len(score), dtype=np.intp)
        returns = self._centred_return_ranks("pooled", valid, everyone)
        scores = _centred_ranks(score[valid], everyone[valid])
        denominator = np.sqrt((scores @ scores) * (returns @ returns))
        return float(scores @ returns / denominator) if denominator > 0 else np.nan

    def _centred_return_ranks(self, scope: str, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The forward returns' centred ranks on `rows` within `groups`, reused while `rows` is the same."""
        cached = self._return_ranks.get(scope)
        if cached is not None and np.array_equal(cached[0], rows):
            return cached[1]
        ranks = _centred_ranks(self.fwd_returns[rows], groups[rows])
        self._return_ranks[scope] = (rows, ranks)
        return ranks


def _centred_ranks(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each value's average rank within its group (ties share their mean rank), minus the group's mean rank.

    Ranks are half-integers and their group means (size + 1) / 2, so these, their products and their
    sums over a date are exact: the per-date correlations do not depend on summation order. Rows come
    sorted by date, so each date is sorted on its own (eight times faster than one lexsort).
    """
    n = len(values)
    by_group = np.arange(n) if np.all(groups[1:] >= groups[:-1]) else np.argsort(groups, kind="stable")
    grouped = groups[by_group]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = grouped[1:] != grouped[:-1]
    group_start = np.flatnonzero(new_group)
    order = np.empty(n, dtype=np.intp)
    for start, end in zip(group_start, np.append(group_start[1:], n), strict=True):
        members = by_group[start:end]
        order[start:end] = members[np.argsort(values[members])]
    ordered = values[order]
    new_run = new_group.copy()
    new_run[1:] |= ordered[1:] != ordered[:-1]
    run_start = np.flatnonzero(new_run)
    run_end = np.append(run_start[1:], n) - 1
    run_middle = ((run_start + run_end) / 2.0)[np.cumsum(new_run) - 1]
    group_size = np.diff(np.append(group_start, n))
    which = np.cumsum(new_group) - 1
    centred = np.empty(n)
    centred[order] = run_middle - group_start[which] + 1.0 - (group_size[which] + 1) / 2.0
    return centred


def balanced_accuracy(confusion: np.ndarray) -> float:
    """Mean recall over the classes that occur (rows: true class, columns: predicted), as scikit-learn's."""
    support = confusion.sum(axis=1)
    occurs = support > 0
    return float(np.mean(np.diag(confusion)[occurs] / support[occurs]))


def macro_f1(confusion: np.ndarray) -> float:
    """F1 averaged over all classes, 0 for a class never true nor predicted (scikit-learn's zero_division=0)."""
    hits = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return float(np.mean(np.divide(2 * hits, denominator, out=np.zeros(len(hits)), where=denominator > 0)))


def classification_metrics(
    proba: np.ndarray,
    labels: np.ndarray,
    fwd_returns: np.ndarray,
    dates: np.ndarray,
    horizon: int,
) -> dict[str, float]:
    """All metrics for one model's probabilities (n x 3) on labelled, dated rows."""
    return ScoredRows(labels, fwd_returns, dates, horizon).metrics(proba)


def ovr_auc(proba: np.ndarray, labels: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes that occur both as positives and negatives.

    Each AUC is the Mann-Whitney statistic from average ranks (what roc_auc_score's trapezoids
    compute), one sort a class; the rank sums are exact.
    """
    n = len(labels)
    everyone = np.zeros(n, dtype=np.intp)
    aucs = []
    for k in range(N_CLASSES):
        positive = labels == k
        n_pos = int(positive.sum())
        if 0 < n_pos < n:
            rank_sum = _centred_ranks(proba[:, k], everyone)[positive].sum() + n_pos * (n + 1) / 2
            aucs.append((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos)))
    return float(np.mean(aucs)) if aucs else np.nan


def per_date_rank_ic(score: np.ndarray, fwd_returns: np.ndarray, dates: np.ndarray) -> pd.Series:
    """Spearman correlation of score and forward return across names, one value per date (see ScoredRows)."""
    return ScoredRows(np.zeros(len(score)), fwd_returns, dates, 1).per_date_rank_ic(score)


def pooled_rank_ic(score: np.ndarray, fwd_returns: np.ndarray) -> float:
    """One Spearman correlation over all rows (NaN for a constant score)."""
    return ScoredRows(np.zeros(len(score)), fwd_returns, np.zeros(len(score)), 1).pooled_rank_ic(score)


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
    scored = ScoredRows(labels, fwd_returns, dates, horizon)
    rows = {name: scored.metrics(proba) for name, proba in probas.items()}
    rows[ALWAYS_HOLD] = scored.metrics(always_hold_proba(len(labels)))
    rows[CLASS_PRIOR] = scored.metrics(prior_proba)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table
