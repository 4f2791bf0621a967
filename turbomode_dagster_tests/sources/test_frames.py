"""The frame helpers the Yahoo and IBKR sources share."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from turbomode_dagster.ingestion.validation import validate_bars
from turbomode_dagster.sources._frames import bars_frame


def rows(*volumes: float) -> pd.DataFrame:
    dates = ["2026-11-23", "2026-11-24", "2026-11-25"][: len(volumes)]
    return pd.DataFrame({"date": dates, "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": list(volumes)})


def test_volumes_are_whole_int64_when_they_fit() -> None:
    bars = bars_frame("AAPL", rows(1000.4, math.nan))
    assert bars["volume"].dtype == np.int64
    assert bars["volume"].tolist() == [1000, 0]


def test_an_infinite_or_overflowing_volume_reaches_validation_instead_of_crashing() -> None:
    bars = bars_frame("AAPL", rows(1000.0, math.inf, 1e300))
    accepted, rejected = validate_bars(bars.assign(source="yahoo"), "2026-11-25")
    assert accepted["date"].tolist() == ["2026-11-23"]
    assert rejected["reason"].tolist() == ["non-finite volume", "volume beyond a signed 64-bit integer"]
