"""The backtest picture: net equity of the strategy against its benchmark, and the strategy's drawdown.

Drawn on a bare matplotlib Figure (the Agg canvas, no pyplot state, no display) into PNG bytes,
so the Dagster asset can embed it in its metadata as a base64 data URI.
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FIGURE_SIZE = (9.0, 5.0)
DPI = 80


def equity_png(equity: pd.DataFrame, strategy: str, benchmark: str, title: str) -> bytes:
    """PNG of `equity` (date, strategy, benchmark, drawdown): two stacked panels sharing the dates."""
    dates = pd.to_datetime(equity["date"])
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(dates, equity["strategy"], label=f"{strategy} (net)", color="tab:blue", linewidth=1.2)
    top.plot(dates, equity["benchmark"], label=f"{benchmark} (net)", color="tab:gray", linewidth=1.0)
    top.set_ylabel("portfolio value")
    top.set_title(title)
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.fill_between(dates, 100 * equity["drawdown"], 0, color="tab:red", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
