"""Anchored feature blocks and the rescaling of price-unit columns to traded units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.features.history import (
    PRICE_UNIT_COLUMNS,
    WARMUP_SESSIONS,
    block_anchor,
    feature_blocks,
    in_traded_units,
)

START = "2019-01-02"


def test_every_session_of_a_year_shares_one_anchor_warmup_sessions_before_the_year() -> None:
    year = calendar.sessions("2024-01-01", "2024-12-31")
    anchors = {block_anchor(day, START) for day in (year[0], year[100], year[-1])}
    assert len(anchors) == 1
    (anchor,) = anchors
    assert len(calendar.sessions(anchor, year[0])) == WARMUP_SESSIONS + 1


def test_an_anchor_never_precedes_the_history_start() -> None:
    assert block_anchor("2019-06-03", START) == START
    with pytest.raises(ValueError, match="2018-12-31 is before the history start"):
        block_anchor("2018-12-31", START)


def test_a_range_splits_into_one_block_per_calendar_year() -> None:
    days = calendar.sessions("2022-12-20", "2024-01-05")
    blocks = feature_blocks(days, START)
    assert [(b.first, b.last) for b in blocks] == [
        ("2022-12-20", "2022-12-30"),
        ("2023-01-03", "2023-12-29"),
        ("2024-01-02", "2024-01-05"),
    ]
    assert [b.anchor for b in blocks] == [block_anchor(b.first, START) for b in blocks]


def test_price_unit_columns_are_rescaled_by_each_rows_traded_over_adjusted_close() -> None:
    keys = pd.DataFrame({"symbol": ["A", "A", "B"], "date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-02"])})
    prices = keys.assign(close=[10.0, 20.0, 5.0], close_raw=[10.0, 10.0, 5.0]).iloc[::-1]
    features = keys.assign(**{c: [1.0, 2.0, 3.0] for c in PRICE_UNIT_COLUMNS}, rsi_14=[50.0, 60.0, 70.0])
    out = in_traded_units(features, prices)
    np.testing.assert_array_equal(out["atr_14"], [1.0, 1.0, 3.0])
    np.testing.assert_array_equal(out["rsi_14"], features["rsi_14"])
    with pytest.raises(ValueError, match="same \\(symbol, date\\) rows"):
        in_traded_units(features.iloc[:2], prices)
