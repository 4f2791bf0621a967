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


def _market(seed: int = 3, sessions: int = 260) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two symbols of random-walk bars with splits and dividends, one event landing on a bar-less day."""
    import numpy as np

    from turbomode_dagster import calendar

    days = calendar.sessions("2025-01-02", "2026-12-31")[:sessions]
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in ("AAA", "BBB"):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days))))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": days,
                    "open": close * 0.99,
                    "high": close * 1.02,
                    "low": close * 0.97,
                    "close": close,
                    "volume": rng.integers(1_000, 5_000, len(days)),
                }
            )
        )
    raw = pd.concat(frames, ignore_index=True).drop(index=[40])  # AAA misses its bar of days[40]
    events = splits(("AAA", days[40], 2.0), ("AAA", days[150], 0.5), ("BBB", days[90], 3.0))
    paid = dividends(("AAA", days[20], 0.4), ("BBB", days[90], 0.3), ("BBB", days[200], 0.5))
    return raw, events, paid


def test_forward_and_backward_adjustment_give_the_same_returns_over_any_window() -> None:
    import numpy as np

    from turbomode_dagster.prices import forward_adjusted_bars

    raw, events, paid = _market()
    forward = forward_adjusted_bars(raw, events, paid)
    backward = adjusted_bars(raw, events, paid)
    pd.testing.assert_frame_equal(forward[["symbol", "date"]], backward[["symbol", "date"]])
    for symbol in ("AAA", "BBB"):
        rows = forward["symbol"] == symbol
        f, b = forward.loc[rows, "close"].to_numpy(), backward.loc[rows, "close"].to_numpy()
        for lag in (1, 7, 100, len(f) - 1):
            np.testing.assert_allclose(f[lag:] / f[:-lag], b[lag:] / b[:-lag], rtol=1e-12, atol=0)
    # Forward keeps the first bar as traded and grows through dividends (a total-return basis).
    first = forward.groupby("symbol").head(1)
    assert (first["adj_factor"] == 1.0).all()
    bbb = forward[forward["symbol"] == "BBB"]
    assert bbb["adj_factor"].iloc[-1] > 3.0, "a 3:1 split then dividends raise the factor"


def test_a_forward_adjusted_row_never_changes_when_later_sessions_arrive() -> None:
    from turbomode_dagster.prices import forward_adjusted_bars

    raw, events, paid = _market()
    days = sorted(raw["date"].unique())
    for cut in (20, 40, 89, 90, 150, 159):
        upto = days[cut]
        early = forward_adjusted_bars(raw[raw["date"] <= upto], events, paid)
        later = forward_adjusted_bars(raw[raw["date"] <= days[cut + 100]], events, paid)
        later = later[later["date"] <= upto].reset_index(drop=True)
        pd.testing.assert_frame_equal(early, later, check_exact=True)
