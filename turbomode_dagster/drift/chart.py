"""The drift picture: how far each feature is from its alert level, today and over the recent sessions.

Left, the current window's worst statistic per column as a multiple of its calibrated level (1 =
the alert level), coloured by status; right, a heatmap of that multiple over the recent sessions
(columns = sessions), so a persistent move shows as a band and one odd day as a dot. Drawn on a bare
matplotlib Figure (Agg canvas, no pyplot) into PNG bytes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from turbomode_dagster.drift.report import severity

STATUS_COLOURS = {"ok": "tab:green", "warn": "tab:orange", "alert": "tab:red"}
SHOWN = 20
DPI = 80


def drift_png(today: pd.DataFrame, history: pd.DataFrame, title: str) -> bytes:
    """PNG of today's rows (feature, status, statistics, levels) and of `history` (as_of_date, feature, ...)."""
    ranked = today.assign(severity=severity(today)).sort_values("severity", ascending=False).head(SHOWN)
    figure = Figure(figsize=(11.0, 0.32 * len(ranked) + 1.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    bars, heat = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    order = ranked["feature"].tolist()[::-1]
    values = ranked.set_index("feature").loc[order]
    bars.barh(order, values["severity"], color=[STATUS_COLOURS[s] for s in values["status"]])
    bars.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    bars.set_xlabel("worst statistic / its alert level")
    bars.set_title(title, fontsize=10)
    grid = history.assign(severity=severity(history)).pivot_table(
        index="feature", columns="as_of_date", values="severity", aggfunc="max"
    )
    grid = grid.reindex(order)
    image = heat.imshow(np.clip(grid.to_numpy(dtype=float), 0, 2), aspect="auto", cmap="RdYlGn_r", vmin=0, vmax=2)
    heat.set_yticks(range(len(order)), labels=[""] * len(order))
    heat.set_xticks(range(grid.shape[1]), labels=list(grid.columns), rotation=90, fontsize=7)
    heat.set_title("recent sessions (1 = alert level, capped at 2)", fontsize=10)
    figure.colorbar(image, ax=heat, shrink=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
