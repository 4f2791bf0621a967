"""The class-balance picture: the share of SELL, HOLD and BUY labels per month of the training samples.

A label mix that drifts (a calm year is mostly HOLD, a volatile one is not) shows as moving bands, which
the overall shares hide. Drawn on a bare matplotlib Figure (Agg canvas, no pyplot) into PNG bytes.
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from turbomode_dagster.features.summary import LABEL_NAMES

COLOURS = {"SELL": "tab:red", "HOLD": "tab:gray", "BUY": "tab:green"}
DPI = 80


def class_balance_png(samples: pd.DataFrame, title: str) -> bytes:
    """PNG of the monthly label shares of `samples` (date, label coded SELL=0, HOLD=1, BUY=2), stacked to 1."""
    if samples.empty:
        raise ValueError("no training samples to draw the class balance of")
    months = pd.to_datetime(samples["date"]).dt.to_period("M").dt.to_timestamp()
    counts = pd.crosstab(months, samples["label"].map(LABEL_NAMES))
    shares = counts.reindex(columns=list(LABEL_NAMES.values()), fill_value=0).div(counts.sum(axis=1), axis=0)
    figure = Figure(figsize=(9.0, 3.2), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.stackplot(
        shares.index,
        *[shares[name].to_numpy() for name in shares.columns],
        labels=list(shares.columns),
        colors=[COLOURS[name] for name in shares.columns],
        alpha=0.8,
        step="post",
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of samples")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", ncols=3)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
