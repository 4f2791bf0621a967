"""Metrics against independent computations (scipy, closed forms) and the two baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from turbomode_dagster.models.metrics import (
    ALWAYS_HOLD,
    CLASS_PRIOR,
    ScoredRows,
    class_prior,
    classification_metrics,
    metrics_table,
    newey_west_se,
    per_date_rank_ic,
    pooled_rank_ic,
)


@pytest.fixture
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n_dates, n_names = 40, 12
    frame = pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2022-01-03", periods=n_dates).values, n_names),
            "symbol": np.tile([f"S{i}" for i in range(n_names)], n_dates),
            "fwd_return": rng.normal(0, 0.02, n_dates * n_names),
        }
    )
    frame["label"] = np.select([frame["fwd_return"] < -0.01, frame["fwd_return"] > 0.01], [0, 2], 1)
    return frame


def one_hot(labels: np.ndarray, sharp: float = 0.98) -> np.ndarray:
    proba = np.full((len(labels), 3), (1 - sharp) / 2)
    proba[np.arange(len(labels)), labels] = sharp
    return proba


def test_perfect_predictor_scores_perfectly(rows):
    labels = rows["label"].to_numpy()
    result = classification_metrics(
        one_hot(labels), labels, rows["fwd_return"].to_numpy(), rows["date"].to_numpy(), horizon=5
    )
    assert result["balanced_accuracy"] == 1.0
    assert result["macro_f1"] == 1.0
    assert result["auc_ovr"] == 1.0
    assert result["log_loss"] == pytest.approx(-np.log(0.98))
    assert result["rank_ic"] > 0.7
    assert result["n_samples"] == len(rows) and result["n_dates"] == 40


def test_rank_ic_matches_scipy_per_date_and_pooled(rows):
    score = np.random.default_rng(2).normal(size=len(rows)) + 30 * rows["fwd_return"].to_numpy()
    daily = per_date_rank_ic(score, rows["fwd_return"].to_numpy(), rows["date"].to_numpy())
    expected = [
        spearmanr(g["s"], g["r"]).statistic for _, g in rows.assign(s=score, r=rows["fwd_return"]).groupby("date")
    ]
    assert np.allclose(daily.to_numpy(), expected)
    assert pooled_rank_ic(score, rows["fwd_return"].to_numpy()) == pytest.approx(
        spearmanr(score, rows["fwd_return"]).statistic
    )


def test_constant_score_has_no_rank_ic(rows):
    constant = np.zeros(len(rows))
    assert per_date_rank_ic(constant, rows["fwd_return"].to_numpy(), rows["date"].to_numpy()).empty
    assert np.isnan(pooled_rank_ic(constant, rows["fwd_return"].to_numpy()))


def test_newey_west_without_lags_is_the_plain_standard_error():
    values = np.random.default_rng(3).normal(size=50)
    assert newey_west_se(values, 0) == pytest.approx(values.std() / np.sqrt(50))
    trending = np.repeat(values[:10], 5)
    assert newey_west_se(trending, 4) > newey_west_se(trending, 0)


def test_class_prior_log_loss_is_the_label_entropy(rows):
    labels = rows["label"].to_numpy()
    prior = class_prior(labels)
    result = classification_metrics(
        np.tile(prior, (len(labels), 1)), labels, rows["fwd_return"].to_numpy(), rows["date"].to_numpy(), 5
    )
    assert result["log_loss"] == pytest.approx(-(prior * np.log(prior)).sum())
    assert result["auc_ovr"] == 0.5
    assert np.isnan(result["rank_ic"])


def test_metrics_table_adds_both_baselines_on_the_same_rows(rows):
    labels = rows["label"].to_numpy()
    fold = np.where(np.arange(len(rows)) < 240, 0, 1)
    priors = np.array([[0.3, 0.4, 0.3], [0.2, 0.6, 0.2]])
    table = metrics_table(
        {"good": one_hot(labels, 0.9)},
        labels,
        rows["fwd_return"].to_numpy(),
        rows["date"].to_numpy(),
        priors[fold],
        horizon=5,
    )
    assert list(table.index) == ["good", ALWAYS_HOLD, CLASS_PRIOR]
    assert (table["n_samples"] == len(rows)).all()
    assert table.loc[ALWAYS_HOLD, "balanced_accuracy"] == pytest.approx(1 / 3)
    first = labels[:240]
    expected_first = -np.log(np.array([0.3, 0.4, 0.3])[first])
    expected = np.concatenate([expected_first, -np.log(np.array([0.2, 0.6, 0.2])[labels[240:]])]).mean()
    assert table.loc[CLASS_PRIOR, "log_loss"] == pytest.approx(expected)
    assert table.loc["good", "log_loss"] < table.loc[CLASS_PRIOR, "log_loss"] < table.loc[ALWAYS_HOLD, "log_loss"]


def test_classification_scores_match_scikit_learn_with_ties_and_a_class_never_predicted():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 3000)
    proba = np.round(rng.dirichlet([1, 2, 1], 3000), 2)  # rounded: many tied probabilities
    sell_first = proba.argmax(axis=1) == 0
    proba[sell_first] = np.sort(proba[sell_first], axis=1)[:, [0, 2, 1]]  # SELL never the most probable
    dates = np.repeat(pd.bdate_range("2024-01-01", periods=100).values, 30)
    result = classification_metrics(proba, labels, rng.normal(size=3000), dates, horizon=5)
    predicted = proba.argmax(axis=1)
    assert 0 not in predicted
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predicted), rel=1e-12)
    expected_f1 = f1_score(labels, predicted, labels=range(3), average="macro", zero_division=0)
    assert result["macro_f1"] == pytest.approx(expected_f1, rel=1e-12)
    expected_auc = np.mean([roc_auc_score(labels == k, proba[:, k]) for k in range(3)])
    assert result["auc_ovr"] == pytest.approx(expected_auc, rel=1e-12)


def test_rank_ics_match_scipy_on_shuffled_rows_with_missing_values_and_ties():
    """Rows in any order, NaN scores or returns dropped per model, ties ranked by their mean, and the
    returns' ranks shared between models only where their missing rows agree."""
    rng = np.random.default_rng(5)
    n = 2400
    frame = pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2024-01-01", periods=60).values, 40),
            "r": np.round(rng.normal(0, 0.02, n), 3),
        }
    ).sample(frac=1.0, random_state=6)
    frame.loc[frame.index[:50], "r"] = np.nan
    scored = ScoredRows(np.zeros(n), frame["r"].to_numpy(), frame["date"].to_numpy(), horizon=5)
    for trial in range(3):
        score = np.round(rng.normal(size=n) + 20 * frame["r"].fillna(0).to_numpy(), 1)
        if trial == 1:
            score[rng.random(n) < 0.1] = np.nan  # a model with its own missing rows
        daily = scored.per_date_rank_ic(score)
        both = frame.assign(s=score).dropna()
        expected = both.groupby("date")[["s", "r"]].apply(lambda g: spearmanr(g["s"], g["r"]).statistic)
        assert daily.index.equals(expected.index)
        assert daily.to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12), trial
        assert scored.pooled_rank_ic(score) == pytest.approx(spearmanr(both["s"], both["r"]).statistic, rel=1e-12)
