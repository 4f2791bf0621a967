"""SHAP importance summaries and their picture, on a shap_logs frame small enough to check by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from turbomode_dagster.models.chart import shap_png
from turbomode_dagster.models.shap_summary import ensemble_top_features, learner_top_features

PNG = b"\x89PNG\r\n\x1a\n"


def importance() -> pd.DataFrame:
    """Two learners, three classes, three features; mean |SHAP| chosen so the learners disagree."""
    values = {
        ("hist", "BUY"): {"a": 0.30, "b": 0.10, "c": 0.05},
        ("linear", "BUY"): {"a": 0.00, "b": 0.24, "c": 0.06},
        ("hist", "SELL"): {"a": 0.01, "b": 0.02, "c": 0.40},
        ("linear", "SELL"): {"a": 0.03, "b": 0.02, "c": 0.20},
        ("hist", "HOLD"): {"a": 0.05, "b": 0.05, "c": 0.05},
        ("linear", "HOLD"): {"a": 0.05, "b": 0.05, "c": 0.05},
    }
    rows = []
    for (model, label), by_feature in values.items():
        ranked = sorted(by_feature.items(), key=lambda kv: (-kv[1], kv[0]))
        rows += [(model, label, f, v, rank) for rank, (f, v) in enumerate(ranked, start=1)]
    return pd.DataFrame(rows, columns=["model_name", "class_label", "feature", "mean_abs_shap", "rank"])


def test_ensemble_top_features_average_the_learners_per_class_buy_first() -> None:
    top = ensemble_top_features(importance(), k=2)
    assert list(top.columns) == ["class_label", "rank", "feature", "mean_abs_shap"]
    assert list(top["class_label"]) == ["BUY", "BUY", "SELL", "SELL", "HOLD", "HOLD"]
    buy = top[top["class_label"] == "BUY"]
    assert list(buy["feature"]) == ["b", "a"]  # b: (0.10 + 0.24) / 2 = 0.17 beats a: (0.30 + 0.00) / 2
    assert buy["mean_abs_shap"].tolist() == pytest.approx([0.17, 0.15])
    assert list(top.loc[top["class_label"] == "SELL", "feature"]) == ["c", "a"]
    assert list(top.loc[top["class_label"] == "HOLD", "feature"]) == ["a", "b"]  # a tie: by name
    assert list(top["rank"]) == [1, 2, 1, 2, 1, 2]


def test_learner_table_has_every_learner_and_class_in_one_row_each() -> None:
    table = learner_top_features(importance(), k=2)
    assert list(table.columns) == ["class_label", "learner", "top_features"]
    assert list(zip(table["class_label"], table["learner"], strict=True)) == [
        ("BUY", "hist"),
        ("BUY", "linear"),
        ("SELL", "hist"),
        ("SELL", "linear"),
        ("HOLD", "hist"),
        ("HOLD", "linear"),
    ]
    assert table["top_features"].iloc[0] == "a 0.300, b 0.100"
    assert table["top_features"].iloc[1] == "b 0.240, c 0.060"


def test_no_shap_values_give_empty_tables_and_no_picture() -> None:
    empty = importance().iloc[0:0]
    assert ensemble_top_features(empty).empty and learner_top_features(empty).empty
    with pytest.raises(ValueError, match="no SHAP importance"):
        shap_png(ensemble_top_features(empty), "nothing")


def test_the_shap_picture_is_a_png() -> None:
    png = shap_png(ensemble_top_features(importance()), "tm-test: top features per class")
    assert png.startswith(PNG) and len(png) > 2_000
