"""adjusted_bars: backward split and dividend adjustment on hand-checkable frames."""

from __future__ import annotations

import pandas as pd
import pytest

from turbomode_dagster.prices import adjusted_bars

DATES = ["2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25"]
NO_SPLITS = pd.DataFrame(columns=["symbol", "date", "ratio"])
NO_DIVIDENDS = pd.DataFrame(columns=["symbol", "ex_date", "amount"])


def bars(symbol: str, closes: list[float], volumes: list[int] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": symbol,
            "date": DATES[: len(closes)],
            "open": closes,
            "high": [c * 1.02 for c in closes],
            "low": [c * 0.98 for c in closes],
            "close": closes,
            "volume": volumes or [1000] * len(closes),
        }
    )


def splits(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["symbol", "date", "ratio"])


def dividends(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["symbol", "ex_date", "amount"])


def test_no_events_leave_prices_alone() -> None:
    raw = bars("AAPL", [100.0, 101.0, 102.0])
    out = adjusted_bars(raw, NO_SPLITS, NO_DIVIDENDS)
    pd.testing.assert_series_equal(out["close"], raw["close"])
    assert out["adj_factor"].tolist() == [1.0, 1.0, 1.0]


def test_a_4_for_1_split_is_continuous_in_adjusted_prices() -> None:
    raw = bars("AAPL", [100.0, 100.0, 25.0, 26.0], volumes=[1000, 1000, 4000, 4000])
    out = adjusted_bars(raw, splits(("AAPL", "2026-11-24", 4.0)), NO_DIVIDENDS)
    assert out["close"].tolist() == pytest.approx([25.0, 25.0, 25.0, 26.0])
    assert out["open"].tolist() == pytest.approx([25.0, 25.0, 25.0, 26.0])
    assert out["high"].tolist() == pytest.approx([25.5, 25.5, 25.5, 26.52])
    assert out["volume"].tolist() == pytest.approx([4000, 4000, 4000, 4000])
    assert out["close_raw"].tolist() == [100.0, 100.0, 25.0, 26.0]
    assert out["adj_factor"].tolist() == pytest.approx([0.25, 0.25, 1.0, 1.0])


def test_a_dividend_scales_earlier_prices_by_one_minus_amount_over_previous_close() -> None:
    raw = bars("KO", [50.0, 49.0, 49.5])
    out = adjusted_bars(raw, NO_SPLITS, dividends(("KO", "2026-11-23", 1.0)))
    assert out["adj_factor"].tolist() == pytest.approx([0.98, 1.0, 1.0])
    assert out["close"].tolist() == pytest.approx([49.0, 49.0, 49.5])
    assert out["volume"].tolist() == [1000, 1000, 1000], "dividends do not scale volume"
    assert out["close_raw"].tolist() == [50.0, 49.0, 49.5]


def test_splits_and_dividends_compound() -> None:
    raw = bars("AAPL", [200.0, 100.0, 99.0, 100.0])
    out = adjusted_bars(
        raw, splits(("AAPL", "2026-11-23", 2.0)), dividends(("AAPL", "2026-11-25", 0.99))
    )  # dividend factor 1 - 0.99 / 99 = 0.99
    assert out["adj_factor"].tolist() == pytest.approx([0.5 * 0.99, 0.99, 0.99, 1.0])
    assert out["close"].tolist() == pytest.approx([99.0, 99.0, 98.01, 100.0])
    assert out["volume"].tolist() == pytest.approx([2000, 1000, 1000, 1000])


def test_each_symbol_is_adjusted_only_by_its_own_events() -> None:
    raw = pd.concat([bars("MSFT", [400.0, 401.0, 402.0]), bars("AAPL", [100.0, 50.0, 51.0])], ignore_index=True)
    out = adjusted_bars(raw, splits(("AAPL", "2026-11-23", 2.0)), dividends(("MSFT", "2026-11-24", 4.01)))
    by_symbol = {s: g.reset_index(drop=True) for s, g in out.groupby("symbol")}
    assert by_symbol["AAPL"]["close"].tolist() == pytest.approx([50.0, 50.0, 51.0])
    assert by_symbol["AAPL"]["adj_factor"].tolist() == pytest.approx([0.5, 1.0, 1.0])
    assert by_symbol["MSFT"]["adj_factor"].tolist() == pytest.approx([0.99, 0.99, 1.0])
    assert by_symbol["MSFT"]["volume"].tolist() == [1000, 1000, 1000]
    assert out["symbol"].tolist() == ["AAPL"] * 3 + ["MSFT"] * 3, "sorted by symbol and date"


def test_the_latest_bar_keeps_its_traded_price_and_input_is_untouched() -> None:
    raw = bars("AAPL", [100.0, 25.0])
    copy = raw.copy()
    out = adjusted_bars(raw, splits(("AAPL", "2026-11-23", 4.0)), NO_DIVIDENDS)
    assert out["close"].iloc[-1] == 25.0
    pd.testing.assert_frame_equal(raw, copy)


def test_an_event_on_a_day_without_a_bar_lands_on_the_next_bar() -> None:
    # The 2026-11-23 bar is missing (quarantined, say): the split must still be applied, or prices jump.
    raw = bars("AAPL", [100.0, 101.0, 25.0, 26.0]).drop(index=1)
    out = adjusted_bars(raw, splits(("AAPL", "2026-11-23", 4.0)), dividends(("AAPL", "2026-11-23", 1.0)))
    # Dividend factor on the next bar uses the close before it: 1 - 1 / 100.
    assert out["adj_factor"].tolist() == pytest.approx([0.25 * 0.99, 1.0, 1.0])


def test_events_outside_the_bars_change_nothing() -> None:
    raw = bars("AAPL", [100.0, 101.0])
    out = adjusted_bars(
        raw, splits(("AAPL", "2026-11-19", 2.0), ("AAPL", "2026-11-25", 3.0)), dividends(("AAPL", "2026-12-01", 1.0))
    )
    assert out["adj_factor"].tolist() == [1.0, 1.0]
    assert out["volume"].tolist() == [1000, 1000]
