"""What the feature engine reads: the stored adjusted price panel in anchored blocks, and labels from it.

`session_feature_blocks` computes the features of given sessions from the `adjusted_prices` dataset in
blocks anchored at a fixed function of each session (`block_anchor`), so one backfill of a range and
night-by-night runs store the same bits; `matured_samples` joins them with the labels that matured
on given sessions (`matured_sample_blocks`: a year of label dates at a time). `load_history` (the
Master DB adjusted backwards, up to one night) remains for the read-path benchmark and its test.
Nothing after a session can reach its feature or label.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from turbomode_dagster import calendar
from turbomode_dagster.features import compute_features, make_labels, training_samples
from turbomode_dagster.prices import adjusted_bars
from turbomode_dagster.storage.market_db import MarketDataReader
from turbomode_dagster.storage.session_blocks import SessionRows
from turbomode_dagster.storage.session_dataset import SessionDataset


@dataclass(frozen=True)
class MarketHistory:
    """Adjusted bars (date as datetime64, plus close_raw), sectors and fundamentals known by `as_of`."""

    as_of: str
    bars: pd.DataFrame
    sectors: pd.DataFrame
    fundamentals: pd.DataFrame


def load_history(reader: MarketDataReader, symbols: Sequence[str], as_of: str) -> MarketHistory:
    """Read the universe's history up to `as_of` through the read-only handle and adjust it."""
    raw = reader.bars(symbols=symbols, end=as_of)
    if raw.empty:
        raise LookupError(f"the Master DB holds no bars for the universe up to {as_of}: run ingestion first")
    # Only events on a bar up to as_of enter the adjustment, so later splits cannot leak backwards.
    adjusted = adjusted_bars(raw, reader.splits(symbols=symbols), reader.dividends(symbols=symbols))
    adjusted["date"] = pd.to_datetime(adjusted["date"])
    columns = ["symbol", "date", "open", "high", "low", "close", "volume", "close_raw"]
    return MarketHistory(
        as_of=as_of,
        bars=adjusted[columns].reset_index(drop=True),
        sectors=reader.metadata()[["symbol", "sector"]],
        fundamentals=reader.fundamentals(symbols=symbols, known_by=as_of),
    )


# Sessions read before a block's first kept session. It must exceed the longest window (252 rows,
# dist_52w_high/low) and let the recursive smoothers forget their seed: after 320 rows the slowest,
# RSI-21's Wilder average (seeded at row 21), keeps (20/21) ** 299 ~ 5e-7 of its seed, MACD's 26-EMA
# (25/27) ** 295 ~ 1e-10, ATR-14 (13/14) ** 306 ~ 1e-10. So the first kept session's values agree with
# a full-history computation to about 1e-6 relative, and a night's block is at most 320 + 252 sessions.
WARMUP_SESSIONS = 320
# Columns in price units (TA-Lib's MACD, ATR and Bollinger bands); everything else is scale-free.
PRICE_UNIT_COLUMNS = ("macd", "macd_signal", "macd_hist", "atr_14", "bb_upper_20", "bb_middle_20", "bb_lower_20")
PRICE_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume", "close_raw"]


@dataclass(frozen=True)
class FeatureBlock:
    """Read adjusted prices from `anchor`, keep the features of sessions `first` to `last`."""

    anchor: str
    first: str
    last: str


def block_anchor(day: str, history_start: str, warmup: int = WARMUP_SESSIONS) -> str:
    """The first session the features of `day` are computed from: `warmup` sessions before the first
    session of `day`'s calendar year (never before the history start). A fixed function of `day`, so a
    value never depends on how a range was split into runs."""
    known = calendar.sessions(history_start, day)
    if not known:
        raise ValueError(f"session {day} is before the history start {history_start}")
    year_start = next(i for i, s in enumerate(known) if s[:4] == day[:4])
    return known[max(0, year_start - warmup)]


def feature_blocks(sessions: Sequence[str], history_start: str, warmup: int = WARMUP_SESSIONS) -> list[FeatureBlock]:
    """One block per calendar year of the (sorted) `sessions`: a night is one block, a decade ten."""
    days = sorted(sessions)
    years = sorted({d[:4] for d in days})
    blocks = []
    for year in years:
        inside = [d for d in days if d[:4] == year]
        blocks.append(FeatureBlock(block_anchor(inside[0], history_start, warmup), inside[0], inside[-1]))
    return blocks


def in_traded_units(features: pd.DataFrame, prices: pd.DataFrame) -> pd.DataFrame:
    """Rescale the price-unit columns of features computed on forward-adjusted prices to each row's
    session's traded units (x close_raw / close of that row), so they mean what TA-Lib's do on the
    prices people saw that day. `prices` holds the same (symbol, date) rows as `features`."""
    bars = prices.sort_values(["symbol", "date"], kind="stable", ignore_index=True)
    if not (
        np.array_equal(bars["symbol"].to_numpy(), features["symbol"].to_numpy())
        and np.array_equal(bars["date"].to_numpy(), features["date"].to_numpy())
    ):
        raise ValueError("features and prices must cover the same (symbol, date) rows")
    scale = bars["close_raw"].to_numpy(dtype=float) / bars["close"].to_numpy(dtype=float)
    out = features.copy()
    for column in PRICE_UNIT_COLUMNS:
        out[column] = features[column].to_numpy() * scale
    return out


def session_feature_blocks(
    prices: SessionDataset,
    sessions: Sequence[str],
    history_start: str,
    backend: str,
    sectors: pd.DataFrame | None,
    fundamentals: pd.DataFrame | None,
    data_start: str | None = None,
) -> Iterator[SessionRows]:
    """Features of exactly `sessions`, one calendar-year block at a time from the adjusted price dataset,
    so a ten-year backfill holds one year's features, not the decade's.

    The features of session D come from the price rows [block_anchor(D), D] only: the engine is causal
    given its first row, so the same anchor gives the same bits whether D is computed alone (a night)
    or inside a year's block (a backfill). `data_start` is where the Master DB's bars begin: sessions
    before it cannot have prices (a home that loaded only a later session), every one after it must.
    Each block's rows are sorted by (date, symbol) and carry the engine's `backend` attrs.
    """
    days = sorted(sessions)
    for block in feature_blocks(days, history_start):
        inside = [d for d in days if block.first <= d <= block.last]
        bars = prices.read(block.anchor, block.last, columns=PRICE_COLUMNS)
        _require_every_session(bars, block, data_start)
        features = compute_features(bars, backend=backend, sectors=sectors, fundamentals=fundamentals)
        attrs = dict(features.attrs)
        features = in_traded_units(features, bars)
        del bars
        keep = features["date"].isin(pd.to_datetime(inside))
        rows = features[keep].sort_values(["date", "symbol"], kind="stable", ignore_index=True)
        rows.attrs.update(attrs)
        yield SessionRows(rows, inside)


def _require_every_session(bars: pd.DataFrame, block: FeatureBlock, data_start: str | None) -> None:
    """Refuse a block whose price rows miss a session the Master DB holds bars from: its features would
    silently differ from a backfill's."""
    present = set(bars["date"].dt.strftime("%Y-%m-%d").unique())
    first = max(block.anchor, data_start or block.anchor)
    missing = [day for day in calendar.sessions(first, block.last) if day not in present]
    if missing:
        raise LookupError(
            f"adjusted_prices has no rows for {len(missing)} session(s) from {missing[0]} that the features of "
            f"{block.first}..{block.last} read (from {block.anchor}): materialise adjusted_prices for them first"
        )


def matured_samples(
    features: SessionDataset,
    prices: SessionDataset,
    sessions: Sequence[str],
    history_start: str,
    horizon: int,
    sell_threshold: float,
    buy_threshold: float,
) -> pd.DataFrame:
    """The labelled samples whose label matured on one of `sessions`: features of the bar `horizon` rows
    earlier (the symbol's own rows) with the forward return to the matured bar; `label_date` says which.

    Prices are read from 3 x horizon sessions before the first session (gaps of up to 2 x horizon missing
    bars per symbol are bridged); a label is a pure function of its two closes, so any split of the range
    gives the same bits.
    """
    days = sorted(sessions)
    known = calendar.sessions(history_start, days[-1])
    start = known[max(0, known.index(days[0]) - 3 * horizon)]
    closes = prices.read(start, days[-1], columns=["symbol", "date", "close"])
    labels = make_labels(closes, horizon, sell_threshold, buy_threshold)
    labels["label_date"] = labels.groupby("symbol", sort=False)["date"].shift(-horizon)
    labels = labels[labels["label_date"].isin(pd.to_datetime(days))].reset_index(drop=True)
    rows = features.read(start, days[-1], symbols=sorted(labels["symbol"].unique()))
    samples = training_samples(rows, labels).merge(
        labels[["symbol", "date", "label_date"]], on=["symbol", "date"], how="left", validate="one_to_one"
    )
    return samples.sort_values(["label_date", "symbol"], kind="stable", ignore_index=True)


def matured_sample_blocks(
    features: SessionDataset,
    prices: SessionDataset,
    sessions: Sequence[str],
    history_start: str,
    horizon: int,
    sell_threshold: float,
    buy_threshold: float,
) -> Iterator[SessionRows]:
    """`matured_samples` of `sessions` one calendar year of label dates at a time (the same bits as one call:
    a label is a pure function of its two closes), so a backfill holds one year's samples at a time."""
    days = sorted(sessions)
    for year in sorted({d[:4] for d in days}):
        inside = [d for d in days if d[:4] == year]
        rows = matured_samples(features, prices, inside, history_start, horizon, sell_threshold, buy_threshold)
        yield SessionRows(rows, inside)
