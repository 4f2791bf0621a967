"""The feature panel: symbol isolation, gaps and late listings, point-in-time, cross-section, fundamentals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.features import FEATURE_COLUMNS, compute_features
from turbomode_dagster.features.indicators import RATIO_COLUMNS, TALIB_COLUMNS

SESSIONS = pd.bdate_range("2019-01-01", periods=420)
PER_SYMBOL = [*TALIB_COLUMNS, *RATIO_COLUMNS]


def make_bars(spec: dict[str, tuple[int, int, float]], seed: int = 0) -> pd.DataFrame:
    """Random-walk bars: symbol -> (first session index, number of bars, starting price), rows shuffled."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol, (first, count, price) in spec.items():
        close = price * np.exp(np.cumsum(rng.normal(0, 0.02, count)))
        open_ = close * np.exp(rng.normal(0, 0.01, count))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, count))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, count))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": SESSIONS[first : first + count],
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(10_000, 1_000_000, count).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed, ignore_index=True)


def quarterly_filings(symbols: list[str], first_quarter: str = "2017-12-31", quarters: int = 12) -> pd.DataFrame:
    """Quarterly fundamentals per symbol, public 40 days after the quarter ends (ISO strings, as sources give)."""
    rng = np.random.default_rng(3)
    ends = pd.date_range(first_quarter, periods=quarters, freq="QE")
    rows = []
    for symbol in symbols:
        for end in ends:
            revenue = float(rng.uniform(1e8, 2e8))
            rows.append(
                {
                    "symbol": symbol,
                    "period_end": end.strftime("%Y-%m-%d"),
                    "available_date": (end + pd.Timedelta(days=40)).strftime("%Y-%m-%d"),
                    "revenue": revenue,
                    "net_income": revenue * float(rng.uniform(0.05, 0.2)),
                    "eps": 1.0,
                    "book_value_per_share": float(rng.uniform(5, 20)),
                    "shares_outstanding": 1e7,
                }
            )
    return pd.DataFrame(rows)


def per_symbol(features: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """One symbol's rows and per-symbol columns, re-indexed from 0."""
    return features.loc[features["symbol"] == symbol, ["date", *PER_SYMBOL]].reset_index(drop=True)


def test_output_is_one_sorted_row_per_bar_with_declared_columns_and_dtypes():
    bars = make_bars({"B": (0, 60, 20.0), "A": (5, 40, 50.0)})
    features = compute_features(bars)
    assert list(features.columns) == ["symbol", "date", *FEATURE_COLUMNS]
    assert len(features) == len(bars)
    expected_keys = bars.sort_values(["symbol", "date"])[["symbol", "date"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(features[["symbol", "date"]], expected_keys)
    assert (features[list(TALIB_COLUMNS)].dtypes == np.float64).all()
    assert (features[[c for c in FEATURE_COLUMNS if c not in TALIB_COLUMNS]].dtypes == np.float32).all()


def test_a_symbol_sees_only_its_own_bars():
    """Each symbol's per-symbol features equal those computed from that symbol alone, bit for bit."""
    spec = {"A": (0, 400, 9_000.0), "B": (150, 200, 3.0), "C": (0, 30, 40.0), "D": (100, 320, 120.0)}
    bars = make_bars(spec)
    together = compute_features(bars)
    for symbol in spec:
        alone = compute_features(bars[bars["symbol"] == symbol])
        pd.testing.assert_frame_equal(per_symbol(together, symbol), per_symbol(alone, symbol), check_exact=True)


def test_late_listing_starts_with_its_own_warm_up():
    bars = make_bars({"A": (0, 300, 1_000.0), "B": (200, 100, 5.0)})
    b = per_symbol(compute_features(bars), "B")
    assert b["date"].iloc[0] == SESSIONS[200]
    assert np.isnan(b["ret_1d"].iloc[0])  # not computed from A's last close
    assert np.isfinite(b["ret_1d"].iloc[1:]).all()
    assert b["rsi_14"].iloc[:14].isna().all() and np.isfinite(b["rsi_14"].iloc[14])
    assert b["atr_14"].iloc[:14].isna().all() and np.isfinite(b["atr_14"].iloc[14])
    assert b["macd"].iloc[:33].isna().all() and np.isfinite(b["macd"].iloc[33])
    assert b["close_to_sma_50"].iloc[:49].isna().all() and np.isfinite(b["close_to_sma_50"].iloc[49])
    assert b["realized_vol_20"].iloc[:20].isna().all() and np.isfinite(b["realized_vol_20"].iloc[20])
    assert b["dist_52w_high"].isna().all()  # fewer than 252 bars


def test_windows_count_rows_across_a_long_halt():
    """A halt of 30 sessions is bridged: the next bar's ret_1d spans the halt, windows count bars."""
    bars = make_bars({"A": (0, 200, 30.0)})
    halted = bars[~bars["date"].isin(SESSIONS[100:130])]
    features = compute_features(halted)
    close = halted.sort_values("date")["close"].to_numpy()
    resumed = features.index[features["date"] == SESSIONS[130]][0]
    assert features.loc[resumed, "ret_1d"] == pytest.approx(np.log(close[resumed] / close[resumed - 1]), rel=1e-6)
    sma5 = close[resumed - 4 : resumed + 1].mean()
    assert features.loc[resumed, "close_to_sma_5"] == pytest.approx(close[resumed] / sma5 - 1, rel=1e-5)


def test_row_order_and_block_size_do_not_change_a_value(monkeypatch):
    bars = make_bars({"A": (0, 300, 10.0), "B": (50, 250, 70.0), "C": (10, 80, 5.0)})
    reference = compute_features(bars.sort_values(["symbol", "date"]))
    monkeypatch.setattr("turbomode_dagster.features.backend.HOST_BLOCK_CELLS", 1)  # one symbol per block
    pd.testing.assert_frame_equal(compute_features(bars), reference, check_exact=True)


def test_bad_input_is_refused():
    bars = make_bars({"A": (0, 30, 10.0)})
    with pytest.raises(ValueError, match="more than one row"):
        compute_features(pd.concat([bars, bars.iloc[:1]]))
    with pytest.raises(ValueError, match="lack the columns"):
        compute_features(bars.drop(columns=["volume"]))
    with pytest.raises(ValueError, match="fundamentals lack the columns"):
        compute_features(bars, fundamentals=quarterly_filings(["A"]).drop(columns=["revenue"]))
    with pytest.raises(ValueError, match="sectors must have"):
        compute_features(bars, sectors=pd.DataFrame({"ticker": ["A"], "sector": ["Tech"]}))


def test_empty_bars_give_an_empty_frame_with_every_column():
    empty = make_bars({"A": (0, 5, 10.0)}).iloc[:0]
    features = compute_features(empty)
    assert features.empty and list(features.columns) == ["symbol", "date", *FEATURE_COLUMNS]


def test_cross_sectional_returns_are_net_of_the_same_day_mean():
    bars = make_bars({"A": (0, 60, 10.0), "B": (0, 60, 20.0), "C": (10, 50, 30.0), "D": (0, 60, 40.0)})
    sectors = pd.DataFrame({"symbol": ["A", "B", "C"], "sector": ["Tech", "Tech", "Energy"]})
    features = compute_features(bars, sectors=sectors)
    ret = features["ret_5d"].astype(float)
    universe_mean = ret.groupby(features["date"]).transform("mean")
    np.testing.assert_allclose(features["ret_5d_vs_universe"], ret - universe_mean, rtol=1e-5, atol=1e-7)
    sector = features["symbol"].map(sectors.set_index("symbol")["sector"])
    sector_mean = ret.groupby([features["date"], sector]).transform("mean")
    known = sector.notna()
    np.testing.assert_allclose(
        features.loc[known, "ret_5d_vs_sector"], (ret - sector_mean)[known], rtol=1e-5, atol=1e-7
    )
    assert features.loc[~known, "ret_5d_vs_sector"].isna().all()  # D has no sector
    lone = features[(features["symbol"] == "C") & ret.notna()]
    assert (lone["ret_5d_vs_sector"] == 0).all()  # alone in its sector
    assert compute_features(bars)["ret_5d_vs_sector"].isna().all()  # no sector map at all


def test_fundamentals_count_only_from_their_available_date():
    bars = make_bars({"A": (0, 420, 50.0)})
    bars["close_raw"] = bars["close"] * 2.0
    filings = quarterly_filings(["A"])
    features = compute_features(bars, fundamentals=filings).set_index("date")
    close = bars.set_index("date")["close"]
    public = pd.to_datetime(filings["available_date"])
    revenue, income = filings["revenue"], filings["net_income"]
    checked = 0
    for i in range(4, len(filings)):
        if not features.index[0] < public[i] <= features.index[-1]:
            continue
        day = features.index[features.index.searchsorted(public[i])]  # first session it can be used on
        before = features.index[features.index.get_loc(day) - 1]
        margin = income[i - 3 : i + 1].sum() / revenue[i - 3 : i + 1].sum()
        margin_before = income[i - 4 : i].sum() / revenue[i - 4 : i].sum()
        assert features.loc[day, "net_margin_ttm"] == pytest.approx(margin, rel=1e-6)
        assert features.loc[before, "net_margin_ttm"] == pytest.approx(margin_before, rel=1e-6)
        assert features.loc[day, "revenue_growth_yoy"] == pytest.approx(revenue[i] / revenue[i - 4] - 1, rel=1e-5)
        price = 2.0 * close[day]  # close_raw, not the adjusted close
        assert features.loc[day, "earnings_yield"] == pytest.approx(
            income[i - 3 : i + 1].sum() / (1e7 * price), rel=1e-6
        )
        assert features.loc[day, "book_to_price"] == pytest.approx(filings["book_value_per_share"][i] / price, rel=1e-6)
        checked += 1
    assert checked >= 4


def test_fundamentals_are_not_joined_on_period_end():
    """A quarter that has ended but is not yet public is invisible: its row must not be used."""
    bars = make_bars({"A": (0, 420, 50.0)})
    filings = quarterly_filings(["A"])
    features = compute_features(bars, fundamentals=filings)
    early = compute_features(bars, fundamentals=filings.iloc[:8])
    last_available = pd.Timestamp(filings["available_date"].iloc[8])
    before = features["date"] < last_available
    for column in ("net_margin_ttm", "revenue_growth_yoy", "earnings_yield", "book_to_price"):
        pd.testing.assert_series_equal(features.loc[before, column], early.loc[before, column], check_exact=True)
        assert features.loc[~before, column].notna().all()
        assert not np.array_equal(features.loc[~before, column], early.loc[~before, column], equal_nan=True)


def test_appending_future_bars_and_filings_changes_no_earlier_value():
    spec = {"A": (0, 420, 30.0), "B": (40, 380, 80.0), "C": (0, 300, 5.0), "D": (100, 320, 600.0)}
    bars = make_bars(spec)
    bars["close_raw"] = bars["close"] * 1.5
    bars = pd.concat([bars, make_bars({"E": (360, 60, 12.0)}, seed=9).assign(close_raw=12.0)], ignore_index=True)
    sectors = pd.DataFrame({"symbol": list("ABCDE"), "sector": ["S1", "S1", "S2", "S2", "S1"]})
    filings = quarterly_filings(list("ABCDE"))
    cutoff = SESSIONS[330]
    past = compute_features(
        bars[bars["date"] <= cutoff],
        sectors=sectors,
        fundamentals=filings[pd.to_datetime(filings["available_date"]) <= cutoff],
    )
    full = compute_features(bars, sectors=sectors, fundamentals=filings)
    earlier = full[full["date"] <= cutoff].reset_index(drop=True)
    pd.testing.assert_frame_equal(earlier, past, check_exact=True)
    assert past["symbol"].nunique() == 4  # E lists after the cutoff
    assert past.iloc[:, 2:].notna().any().all()  # every column, fundamentals included, has values to compare


def test_ratios_over_a_zero_denominator_are_missing_not_infinite() -> None:
    """A flat stretch (zero Bollinger width, zero-range bars) must not hand a model an infinity."""
    days = pd.bdate_range("2024-01-01", periods=60)
    flat = pd.DataFrame(
        {"symbol": "FLAT", "date": days, "open": 5.0, "high": 5.0, "low": 5.0, "close": 5.0, "volume": 1e5}
    )
    features = compute_features(flat)
    numbers = features.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(numbers).any()
    assert features["bb_pct_b_20"].iloc[-1] != features["bb_pct_b_20"].iloc[-1]  # NaN
