"""Point-in-time features for a panel of daily bars, the labels they train against, and the backend.

`compute_features` turns adjusted daily bars of many symbols into one row per (symbol, date). A
value for day t uses only: that symbol's bars up to t's close (panel.py lays the bars out so no
window crosses symbols; indicators.py holds the formulas), the same-day cross-section of all
symbols, and fundamentals whose available_date is on or before t. Appending later bars or filings
changes no earlier value. No Dagster imports anywhere in this package.

Column dtypes: the TA-Lib-named columns (price units, or RSI's 0..100) are float64; the
scale-free ratios a model learns from are float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from turbomode_dagster.features.backend import BackendUnavailable, load_engine, resolve_backend
from turbomode_dagster.features.indicators import (
    RATIO_COLUMNS,
    TALIB_COLUMNS,
    talib_indicators,
    time_series_features,
)
from turbomode_dagster.features.labels import make_labels, training_samples
from turbomode_dagster.features.panel import PRICE_COLUMNS, Layout, Sheet

CROSS_SECTIONAL_COLUMNS = (
    "ret_5d_vs_universe",
    "ret_20d_vs_universe",
    "ret_5d_vs_sector",
    "ret_20d_vs_sector",
)
FUNDAMENTAL_COLUMNS = ("net_margin_ttm", "revenue_growth_yoy", "earnings_yield", "book_to_price")
FEATURE_COLUMNS = (*TALIB_COLUMNS, *RATIO_COLUMNS, *CROSS_SECTIONAL_COLUMNS, *FUNDAMENTAL_COLUMNS)
FILING_VALUES = ("revenue", "net_income", "book_value_per_share", "shares_outstanding")

__all__ = [
    "FEATURE_COLUMNS",
    "BackendUnavailable",
    "compute_features",
    "make_labels",
    "resolve_backend",
    "talib_indicators",
    "training_samples",
]


def compute_features(
    bars: pd.DataFrame,
    backend: str = "pandas",
    sectors: pd.DataFrame | None = None,
    fundamentals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features for every bar: symbol, date, then FEATURE_COLUMNS, sorted by symbol and date.

    `bars`: symbol, date, open, high, low, close, volume (adjusted; any row order), optionally
    close_raw (as traded, used to value fundamentals). `sectors`: symbol, sector. `fundamentals`:
    symbol, period_end, available_date, revenue, net_income, eps, book_value_per_share,
    shares_outstanding, one row per fiscal quarter. Sector and fundamental columns are NaN when
    those frames are absent or say nothing about a symbol. The chosen backend and the reason are
    in the result's `attrs`.
    """
    used, reason = resolve_backend(backend)
    engine = load_engine(used)
    columns = (*PRICE_COLUMNS, "close_raw") if "close_raw" in bars.columns else PRICE_COLUMNS
    layout = Layout(bars, engine, columns)
    ratios = (*RATIO_COLUMNS, *CROSS_SECTIONAL_COLUMNS, *FUNDAMENTAL_COLUMNS)
    sheet = Sheet(layout, [(TALIB_COLUMNS, np.float64), (ratios, np.float32)])
    with np.errstate(divide="ignore", invalid="ignore"):
        for block in layout.blocks():
            for name, matrix in time_series_features(block):
                sheet.put(name, block.long(matrix), block.rows)
        for name, values in _cross_sectional(layout, sectors):
            sheet.put(name, values)
        if fundamentals is not None and len(fundamentals):
            price = engine.to_host(layout.column("close_raw" if "close_raw" in columns else "close"))
            for name, values in _fundamental_features(layout, price, fundamentals):
                sheet.put(name, values)
    frame = sheet.frame(layout.keys())
    frame.attrs.update(backend=used, backend_reason=reason)
    return frame


def _cross_sectional(layout: Layout, sectors: pd.DataFrame | None) -> Iterator[tuple[str, Any]]:
    """5- and 20-day log returns minus the same-day mean over all symbols and over the symbol's sector."""
    xp = layout.xp
    day, n_days = layout.day_codes()
    close = layout.column("close")
    sector, n_sectors = _sector_codes(layout, sectors)
    for rows in (5, 20):
        ret = xp.log(close / layout.lag(close, rows))
        yield f"ret_{rows}d_vs_universe", ret - _group_mean(xp, ret, day, n_days)
        if sector is not None:
            group = xp.where(sector >= 0, day * n_sectors + sector, -1)
            yield f"ret_{rows}d_vs_sector", ret - _group_mean(xp, ret, group, n_days * n_sectors)


def _sector_codes(layout: Layout, sectors: pd.DataFrame | None) -> tuple[Any, int]:
    """Per row, the index of its symbol's sector (-1 when unknown), and how many sectors; None without a map."""
    if sectors is None:
        return None, 0
    if not {"symbol", "sector"} <= set(sectors.columns):
        raise ValueError("sectors must have the columns symbol and sector")
    table = sectors.drop_duplicates("symbol", keep="last").set_index("symbol")["sector"]
    per_symbol, names = pd.factorize(table.reindex(layout.symbols))
    return layout.xp.asarray(per_symbol)[layout.codes], len(names)


def _group_mean(xp: Any, values: Any, group: Any, n_groups: int) -> Any:
    """Each row's group mean of the finite `values` (group -1: no group, NaN)."""
    counted = xp.isfinite(values) & (group >= 0)
    bins = max(n_groups, 1)
    sums = xp.bincount(group[counted], weights=values[counted], minlength=bins)
    counts = xp.bincount(group[counted], minlength=bins)
    return xp.where(group >= 0, (sums / counts)[xp.maximum(group, 0)], np.nan)


def _filings(fundamentals: pd.DataFrame) -> pd.DataFrame:
    """Per filing, in (symbol, available_date, period_end) order, what was known once it was public.

    TTM sums the four latest quarters known at that filing and needs their period ends to span
    three quarters (250-300 days), so a missing quarter or a re-filed one gives NaN rather than a
    wrong sum. Year-on-year revenue growth compares with the filing four back, whose period must
    end 350-380 days earlier.
    """
    needed = ["symbol", "period_end", "available_date", *FILING_VALUES]
    missing = [c for c in needed if c not in fundamentals.columns]
    if missing:
        raise ValueError(f"fundamentals lack the columns {missing}")
    table = fundamentals.loc[:, needed]
    table = table.assign(
        period_end=pd.to_datetime(table["period_end"]).astype("datetime64[ns]"),
        available_date=pd.to_datetime(table["available_date"]).astype("datetime64[ns]"),
        **{name: pd.to_numeric(table[name], errors="coerce").astype("float64") for name in FILING_VALUES},
    )
    table = table.dropna(subset=["period_end", "available_date"])
    table = table.sort_values(["symbol", "available_date", "period_end"], kind="stable", ignore_index=True)
    earlier = table.groupby("symbol", sort=False)

    def back(name: str, filings: int) -> pd.Series:
        """The value `filings` rows earlier for the same symbol."""
        return earlier[name].shift(filings)

    four_quarters = (table["period_end"] - back("period_end", 3)).dt.days.between(250, 300)
    year_ago = (table["period_end"] - back("period_end", 4)).dt.days.between(350, 380)

    def ttm(name: str) -> pd.Series:
        """Sum over the four latest quarters, NaN unless they are consecutive."""
        return (table[name] + back(name, 1) + back(name, 2) + back(name, 3)).where(four_quarters)

    revenue_ttm, income_ttm = ttm("revenue"), ttm("net_income")
    return pd.DataFrame(
        {
            "symbol": table["symbol"],
            "available_date": table["available_date"],
            "net_margin_ttm": income_ttm / revenue_ttm,
            "revenue_growth_yoy": (table["revenue"] / back("revenue", 4) - 1.0).where(year_ago),
            "net_income_ttm": income_ttm,
            "shares_outstanding": table["shares_outstanding"],
            "book_value_per_share": table["book_value_per_share"],
        }
    )


def _fundamental_features(
    layout: Layout, price: np.ndarray, fundamentals: pd.DataFrame
) -> Iterator[tuple[str, np.ndarray]]:
    """FUNDAMENTAL_COLUMNS per bar from the latest filing with available_date <= date (merge_asof, host).

    Valuation ratios use `price` per bar (the as-traded close when the bars carry one, since shares
    outstanding are as reported).
    """
    filings = _filings(fundamentals)
    filings.insert(0, "code", layout.symbols.get_indexer(filings.pop("symbol")))
    filings = filings[filings["code"] >= 0].sort_values("available_date", kind="stable")
    dates = layout.engine.to_host(layout.dates).view("datetime64[ns]")
    by_date = np.argsort(dates, kind="stable")
    left = pd.DataFrame({"code": layout.engine.to_host(layout.codes)[by_date], "date": dates[by_date]})
    joined = pd.merge_asof(left, filings, left_on="date", right_on="available_date", by="code", direction="backward")
    rows = np.empty_like(by_date)
    rows[by_date] = np.arange(by_date.size)

    def per_bar(name: str) -> np.ndarray:
        """A joined column back in (symbol, date) order."""
        return joined[name].to_numpy(dtype="float64")[rows]

    yield "net_margin_ttm", per_bar("net_margin_ttm")
    yield "revenue_growth_yoy", per_bar("revenue_growth_yoy")
    yield "earnings_yield", per_bar("net_income_ttm") / (per_bar("shares_outstanding") * price)
    yield "book_to_price", per_bar("book_value_per_share") / price
