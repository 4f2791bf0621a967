"""The note beside the ensemble's metrics: its numbers come from the out-of-fold rows, its words from the rule."""

from __future__ import annotations

import pandas as pd
import pytest

from turbomode_dagster.models.metrics_note import balanced_accuracy_note, directional_argmax_share


def oof() -> pd.DataFrame:
    """Fold 0 (base learners only) and fold 1 (learners and the ensemble); probabilities p_sell, p_hold, p_buy."""
    rows = [
        # fold 0 is outside the ensemble's rows: it must not count
        ("hist", 0, 0.8, 0.1, 0.1),
        ("hist", 0, 0.8, 0.1, 0.1),
        # fold 1: hist argmaxes SELL, BUY, HOLD, BUY; linear BUY, HOLD, HOLD, HOLD; ensemble HOLD but once
        ("hist", 1, 0.5, 0.3, 0.2),
        ("hist", 1, 0.2, 0.3, 0.5),
        ("hist", 1, 0.2, 0.6, 0.2),
        ("hist", 1, 0.1, 0.4, 0.5),
        ("linear", 1, 0.1, 0.3, 0.6),
        ("linear", 1, 0.2, 0.6, 0.2),
        ("linear", 1, 0.2, 0.6, 0.2),
        ("linear", 1, 0.2, 0.6, 0.2),
        ("ensemble", 1, 0.2, 0.7, 0.1),
        ("ensemble", 1, 0.2, 0.7, 0.1),
        ("ensemble", 1, 0.3, 0.3, 0.4),
        ("ensemble", 1, 0.2, 0.7, 0.1),
    ]
    return pd.DataFrame(rows, columns=["model", "fold", "p_sell", "p_hold", "p_buy"])


def test_directional_share_counts_only_the_ensembles_folds() -> None:
    share = directional_argmax_share(oof())
    assert share.to_dict() == pytest.approx({"hist": 0.75, "linear": 0.25, "ensemble": 0.25})


def test_the_note_states_the_numbers_and_the_promotion_metric() -> None:
    metrics = pd.DataFrame(
        {"balanced_accuracy": [0.49, 0.47, 0.35, 0.33]}, index=["hist", "linear", "ensemble", "class_prior"]
    )
    note = balanced_accuracy_note(metrics, oof())
    assert note.startswith("**Balanced accuracy 0.35 (base learners 0.48 on average) is expected.**")
    assert "BUY or SELL on 25% of out-of-fold rows against 50% for the base learners" in note
    assert "**Promotion uses out-of-sample log loss**" in note and "2 Newey-West standard errors" in note
    assert len(note) < 1_000, "longer markdown is folded behind a link in the Dagster UI"


def test_directional_share_breaks_ties_as_argmax_does() -> None:
    """First of tied maxima: SELL over HOLD, HOLD over BUY."""
    ties = [(0.4, 0.4, 0.2), (0.2, 0.4, 0.4), (1 / 3, 1 / 3, 1 / 3), (0.3, 0.3, 0.4)]
    frame = pd.DataFrame([("ensemble", 1, *p) for p in ties], columns=["model", "fold", "p_sell", "p_hold", "p_buy"])
    expected = (frame[["p_sell", "p_hold", "p_buy"]].to_numpy().argmax(axis=1) != 1).mean()
    assert directional_argmax_share(frame)["ensemble"] == pytest.approx(expected) == pytest.approx(0.75)
