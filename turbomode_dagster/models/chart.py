"""The SHAP picture: the ensemble's top features per class as horizontal bars, one panel per class.

Drawn on a bare matplotlib Figure (Agg canvas, no pyplot state, no display) into PNG bytes, so the
Dagster asset can embed it in its metadata as a base64 data URI.
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from turbomode_dagster.models.shap_summary import CLASS_ORDER

CLASS_COLOURS = {"BUY": "tab:green", "SELL": "tab:red", "HOLD": "tab:gray"}
DPI = 80


def shap_png(top: pd.DataFrame, title: str) -> bytes:
    """PNG of `top` (class_label, rank, feature, mean_abs_shap, as from ensemble_top_features)."""
    classes = [label for label in CLASS_ORDER if (top["class_label"] == label).any()]
    if not classes:
        raise ValueError("no SHAP importance to draw: the table is empty")
    rows = int(top.groupby("class_label").size().max())
    figure = Figure(figsize=(4.0 * len(classes), 0.3 * rows + 1.4), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(classes), squeeze=False)[0]
    for ax, label in zip(axes, classes, strict=True):
        part = top[top["class_label"] == label].sort_values("rank", ascending=False)
        ax.barh(part["feature"], part["mean_abs_shap"], color=CLASS_COLOURS[label])
        ax.set_title(label)
        ax.set_xlabel("mean |SHAP| (log-odds)")
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    figure.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
