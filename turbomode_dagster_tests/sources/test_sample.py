"""Tests of the synthetic sample market: determinism, calendar, OHLC, corporate actions, planted effect."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from turbomode_dagster import calendar
from turbomode_dagster.sources import sample
from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    FUNDAMENTAL_COLUMNS,
    METADATA_COLUMNS,
    SPLIT_COLUMNS,
    MarketDataBatch,
)
from turbomode_dagster.sources.sample import EPOCH, RegimeShift, SampleSource
from turbomode_dagster.universe import DEFAULT_UNIVERSE

UNIVERSE = list(DEFAULT_UNIVERSE)
FRAMES = ("bars", "splits", "dividends", "fundamentals", "metadata")


@pytest.fixture(scope="module")
def history() -> MarketDataBatch:
    """The default universe over 2000-2026 with the default seed."""
    return SampleSource().fetch(UNIVERSE, EPOCH, dt.date(2026, 11, 27))


@pytest.fixture(scope="module")
def wide(history: MarketDataBatch) -> dict[str, pd.DataFrame]:
    """The history's close, volume and split-adjusted close as dates x symbols frames."""
    close, _ = split_adjusted(history)
    return {
        "close": history.bars.pivot(index="date", columns="symbol", values="close"),
        "volume": history.bars.pivot(index="date", columns="symbol", values="volume"),
        "adjusted": close,
    }


def assert_batches_equal(left: MarketDataBatch, right: MarketDataBatch) -> None:
    """Every frame identical (values bit for bit, dtypes, column order)."""
    for kind in FRAMES:
        pd.testing.assert_frame_equal(getattr(left, kind), getattr(right, kind), check_exact=True)
    assert left.failures == right.failures


def split_adjusted(batch: MarketDataBatch) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Close and volume (dates x symbols) restated in today's shares, from the batch's splits only."""
    close = batch.bars.pivot(index="date", columns="symbol", values="close")
    volume = batch.bars.pivot(index="date", columns="symbol", values="volume").astype(float)
    shares = np.ones(close.shape)
    dates = close.index.to_numpy()
    for split in batch.splits.itertuples():
        shares[dates < split.date, close.columns.get_loc(split.symbol)] *= split.ratio
    return close / shares, volume * shares


def test_frames_have_the_contract_columns(history: MarketDataBatch) -> None:
    assert list(history.bars.columns) == BAR_COLUMNS
    assert list(history.splits.columns) == SPLIT_COLUMNS
    assert list(history.dividends.columns) == DIVIDEND_COLUMNS
    assert list(history.fundamentals.columns) == FUNDAMENTAL_COLUMNS
    assert list(history.metadata.columns) == METADATA_COLUMNS
    assert history.bars["volume"].dtype == np.int64
    assert history.failures == {}


def test_two_instances_give_identical_output() -> None:
    window = (dt.date(2018, 1, 1), dt.date(2019, 6, 30))
    first = SampleSource(seed=11, planted_effect=0.2).fetch(UNIVERSE[:20], *window)
    sample._path.cache_clear()
    second = SampleSource(seed=11, planted_effect=0.2).fetch(UNIVERSE[:20], *window)
    assert_batches_equal(first, second)
    other_seed = SampleSource(seed=12, planted_effect=0.2).fetch(UNIVERSE[:20], *window)
    assert not np.array_equal(first.bars["close"].to_numpy(), other_seed.bars["close"].to_numpy())


def test_day_by_day_equals_bulk() -> None:
    source = SampleSource()
    days = calendar.sessions("2026-10-01", "2026-12-31")[:30]
    start, end = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    bulk = source.fetch(UNIVERSE, start, end)
    sample._path.cache_clear()
    daily = [source.fetch(UNIVERSE, dt.date.fromisoformat(d), dt.date.fromisoformat(d)) for d in days]
    for kind, key in (("bars", ["symbol", "date"]), ("splits", ["symbol", "date"])):
        joined = pd.concat([getattr(b, kind) for b in daily], ignore_index=True)
        joined = joined.sort_values(key, ignore_index=True).astype(getattr(bulk, kind).dtypes.to_dict())
        pd.testing.assert_frame_equal(joined, getattr(bulk, kind), check_exact=True)
    dividends = pd.concat([b.dividends for b in daily], ignore_index=True)
    dividends = dividends.sort_values(["symbol", "ex_date"], ignore_index=True)
    assert len(bulk.dividends) > 0
    pd.testing.assert_frame_equal(dividends, bulk.dividends, check_exact=True)
    fundamentals = pd.concat([b.fundamentals for b in daily], ignore_index=True).drop_duplicates()
    assert not fundamentals.duplicated(["symbol", "period_end"]).any()
    merged = bulk.fundamentals.merge(fundamentals, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_day_by_day_equals_bulk_across_a_split(history: MarketDataBatch) -> None:
    split = history.splits.iloc[0]
    window = calendar.sessions(calendar.as_date(split.date) - dt.timedelta(days=6), split.date)
    window += calendar.sessions(calendar.next_session(split.date), calendar.next_session(split.date))
    bulk = SampleSource().fetch([split.symbol], calendar.as_date(window[0]), calendar.as_date(window[-1]))
    sample._path.cache_clear()
    daily = [SampleSource().fetch([split.symbol], calendar.as_date(d), calendar.as_date(d)) for d in window]
    bars = pd.concat([b.bars for b in daily], ignore_index=True)
    pd.testing.assert_frame_equal(bars, bulk.bars, check_exact=True)
    splits = pd.concat([b.splits for b in daily], ignore_index=True)
    pd.testing.assert_frame_equal(splits, bulk.splits, check_exact=True)
    assert list(bulk.splits["date"]) == [split.date]


def test_other_symbols_do_not_change_a_symbols_numbers() -> None:
    window = (dt.date(2012, 1, 1), dt.date(2013, 12, 31))
    alone = SampleSource(planted_effect=0.3).fetch(["MSFT", "ZZTOP"], *window)
    sample._path.cache_clear()
    crowd = SampleSource(planted_effect=0.3).fetch([*reversed(UNIVERSE), "ZZTOP", "QQQQ"], *window)
    for kind in ("bars", "splits", "dividends", "fundamentals", "metadata"):
        frame = getattr(crowd, kind)
        subset = frame[frame["symbol"].isin(["MSFT", "ZZTOP"])].reset_index(drop=True)
        pd.testing.assert_frame_equal(subset, getattr(alone, kind), check_exact=True)


def test_only_nyse_sessions_are_served() -> None:
    batch = SampleSource().fetch(["AAPL", "NEWCO"], dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    dates = sorted(set(batch.bars["date"]))
    assert dates == calendar.sessions("2026-11-01", "2026-11-30")
    assert "2026-11-26" not in dates  # Thanksgiving
    assert all(dt.date.fromisoformat(d).weekday() < 5 for d in dates)
    assert batch.bars.groupby("symbol").size().to_dict() == {"AAPL": len(dates), "NEWCO": len(dates)}
    weekend = SampleSource().fetch(["AAPL"], dt.date(2026, 11, 28), dt.date(2026, 11, 29))
    assert weekend.bars.empty and list(weekend.bars.columns) == BAR_COLUMNS


def test_a_start_before_the_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="1999-12-31"):
        SampleSource().fetch(["AAPL"], dt.date(1999, 12, 31), dt.date(2000, 1, 10))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="planted_effect"):
        SampleSource(planted_effect=-0.1)
    with pytest.raises(ValueError, match="seed"):
        SampleSource(seed=-1)
    batch = SampleSource().fetch(["AAPL", "", " X"], dt.date(2020, 1, 2), dt.date(2020, 1, 3))
    assert set(batch.failures) == {"", " X"}
    assert set(batch.bars["symbol"]) == {"AAPL"}
    empty = SampleSource().fetch([], dt.date(2020, 1, 2), dt.date(2020, 1, 3))
    for kind, columns in zip(
        FRAMES,
        (BAR_COLUMNS, SPLIT_COLUMNS, DIVIDEND_COLUMNS, FUNDAMENTAL_COLUMNS, METADATA_COLUMNS),
        strict=True,
    ):
        assert getattr(empty, kind).empty and list(getattr(empty, kind).columns) == columns


def test_ohlc_is_valid_and_in_cents(history: MarketDataBatch) -> None:
    bars = history.bars
    assert len(bars) == len(UNIVERSE) * len(calendar.sessions(EPOCH, "2026-11-27"))
    prices = bars[["open", "high", "low", "close"]].to_numpy()
    assert (prices >= 0.01).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert np.allclose(prices * 100, np.rint(prices * 100), atol=1e-6)
    assert (bars["volume"] >= 0).all()
    assert not bars.duplicated(["symbol", "date"]).any()


def test_returns_look_like_a_market(wide: dict[str, pd.DataFrame]) -> None:
    returns = np.log(wide["adjusted"]).diff().iloc[1:]
    daily_vol = returns.std()
    assert 0.01 < daily_vol.median() < 0.03
    assert daily_vol.min() > 0.005 and daily_vol.max() < 0.05
    # Volatility clusters: |r| is autocorrelated, r itself is not.
    absolute = returns.abs()
    assert absolute.apply(lambda c: c.autocorr(1)).median() > 0.05
    assert abs(returns.apply(lambda c: c.autocorr(1)).median()) < 0.03
    # Market and sector factors make stocks co-move, more so within a sector.
    corr = returns.iloc[-2500:].corr().to_numpy()
    sectors = np.array([DEFAULT_UNIVERSE[s].sector for s in returns.columns])
    same = sectors[:, None] == sectors[None, :]
    off_diagonal = ~np.eye(len(sectors), dtype=bool)
    assert 0.1 < corr[off_diagonal & ~same].mean() < corr[off_diagonal & same].mean() < 0.8


def test_split_days_jump_by_the_ratio_and_adjusted_prices_are_continuous(
    history: MarketDataBatch, wide: dict[str, pd.DataFrame]
) -> None:
    splits = history.splits
    assert len(splits) >= 3 and splits["symbol"].nunique() >= 3
    assert set(splits["ratio"]) <= {0.1, 2.0, 3.0, 4.0}
    assert splits["symbol"].nunique() < len(UNIVERSE)  # not every symbol splits
    close, volume = wide["close"], wide["volume"]
    position = {d: i for i, d in enumerate(close.index)}
    for split in splits.itertuples():
        i = position[split.date]
        before, after = close[split.symbol].iloc[i - 1], close[split.symbol].iloc[i]
        if split.ratio < 1:
            assert before < 5  # a 1-for-10 reverse split, triggered by a traded price below $5
        else:
            assert before > 350  # triggered by a high traded price
        assert 0.7 / split.ratio < after / before < 1.4 / split.ratio
        assert 0.7 < after * split.ratio / before < 1.4
        volume_before = volume[split.symbol].iloc[i - 20 : i].median()
        volume_after = volume[split.symbol].iloc[i : i + 20].median()
        assert volume_after / volume_before > split.ratio / 3
    assert wide["close"].min().min() > 0.4, "reverse splits keep every symbol above penny-stock prices"
    jumps = np.log(wide["adjusted"]).diff().abs().max()
    assert jumps.max() < 0.45  # no split-sized jump survives adjustment (returns are clipped at 0.4)


def test_dividends_are_quarterly_and_drop_the_close(history: MarketDataBatch, wide: dict[str, pd.DataFrame]) -> None:
    dividends = history.dividends
    payers = dividends["symbol"].unique()
    assert 0.5 * len(UNIVERSE) < len(payers) < len(UNIVERSE)  # most, not all, pay
    assert (dividends["amount"] > 0).all()
    assert np.allclose(dividends["amount"] * 1e4, np.rint(dividends["amount"] * 1e4), atol=1e-6)
    sessions = {d: i for i, d in enumerate(calendar.sessions(EPOCH, "2026-11-27"))}
    for _, group in dividends.groupby("symbol"):
        gaps = np.diff([sessions[d] for d in group["ex_date"]])
        assert ((gaps >= 58) & (gaps <= 68)).all()

    close = wide["close"]
    previous = close.shift(1)
    rows = dividends.join(previous.stack().rename("previous"), on=["ex_date", "symbol"])
    rows = rows.join(close.stack().rename("close"), on=["ex_date", "symbol"]).dropna()
    split_days = set(zip(history.splits["symbol"], history.splits["date"], strict=True))
    assert not any((s, d) in split_days for s, d in zip(rows["symbol"], rows["ex_date"], strict=True))
    yields = rows["amount"] / rows["previous"]
    assert 0.0005 < yields.median() < 0.015
    raw = np.log(rows["close"] / rows["previous"])
    total = np.log((rows["close"] + rows["amount"]) / rows["previous"])
    everyday = np.log(close / previous).stack()
    everyday = everyday[everyday.abs() < 0.4]  # leave out split days
    standard_error = everyday.std() / np.sqrt(len(rows))
    # With the dividend added back, ex-dates look like any day; without it the close drops by it.
    assert abs(total.mean() - everyday.mean()) < 4 * standard_error
    assert abs((total - raw).mean() - yields.mean()) < 0.1 * yields.mean()
    assert everyday.mean() - raw.mean() > 0.5 * yields.mean()


def test_fundamentals(history: MarketDataBatch) -> None:
    funds = history.fundamentals
    assert set(funds["symbol"]) == set(UNIVERSE)
    period_end = pd.to_datetime(funds["period_end"])
    available = pd.to_datetime(funds["available_date"])
    assert period_end.dt.is_quarter_end.all()
    lag = (available - period_end).dt.days
    assert lag.min() >= 30 and lag.max() <= 50
    assert set(funds["available_date"]) <= set(calendar.sessions(EPOCH, "2026-11-27"))
    assert (funds["available_date"] <= "2026-11-27").all()
    assert (funds["shares_outstanding"] > 0).all() and (funds["revenue"] > 0).all()
    implied_eps = funds["net_income"] / funds["shares_outstanding"]
    assert np.allclose(funds["eps"], implied_eps, atol=1e-4)
    # Shares outstanding multiply by the split ratio across a split.
    for split in history.splits.itertuples():
        rows = funds[funds["symbol"] == split.symbol].set_index("period_end")["shares_outstanding"]
        before = rows[rows.index < split.date].iloc[-1]
        after = rows[rows.index >= split.date].iloc[0]
        assert 0.9 * split.ratio < after / before < 1.1 * split.ratio
    # Market cap over revenue stays within a plausible price/sales range.
    close = history.bars.set_index(["symbol", "date"])["close"]
    keys = list(zip(funds["symbol"], funds["available_date"], strict=True))
    price_to_sales = close.loc[keys].to_numpy() * funds["shares_outstanding"] / (4 * funds["revenue"])
    assert 0.3 < price_to_sales.median() < 15


def test_fundamentals_window() -> None:
    batch = SampleSource().fetch(["AAPL", "NEWCO"], dt.date(2020, 6, 1), dt.date(2020, 6, 30))
    funds = batch.fundamentals
    assert (funds["available_date"] <= "2020-06-30").all()
    assert (funds["period_end"] >= "2019-06-02").all()
    assert set(funds.groupby("symbol")["period_end"].min()) == {"2019-06-30"}


def test_metadata() -> None:
    batch = SampleSource().fetch(["MSFT", "NEWCO", "MSFT"], dt.date(2021, 3, 1), dt.date(2021, 3, 5))
    meta = batch.metadata.set_index("symbol")
    assert list(meta.index) == ["MSFT", "NEWCO"]
    assert meta.loc["MSFT", "name"] == DEFAULT_UNIVERSE["MSFT"].name
    assert meta.loc["MSFT", "sector"] == "Technology"
    sectors = {listing.sector for listing in DEFAULT_UNIVERSE.values()}
    assert meta.loc["NEWCO", "sector"] in sectors
    assert meta.loc["NEWCO", "sector"] == sample.sector_of("NEWCO")
    assert set(meta["exchange"]) <= {"NYSE", "NASDAQ"} and set(meta["currency"]) == {"USD"}
    assert len(batch.bars) == 2 * 5


def rank_ic(batch: MarketDataBatch) -> tuple[float, int]:
    """Mean daily cross-sectional Spearman IC of volume-vs-20-day-average against the 5-day return."""
    close, volume = split_adjusted(batch)
    feature = np.log(volume / volume.rolling(20).mean())
    forward = close.shift(-5) / close - 1.0
    ok = feature.notna().all(axis=1) & forward.notna().all(axis=1)
    a = rankdata(feature[ok].to_numpy(), axis=1)
    b = rankdata(forward[ok].to_numpy(), axis=1)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    daily = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return float(daily.mean()), len(daily)


def test_planted_effect_is_learnable_and_absent_when_zero() -> None:
    window = (dt.date(2015, 1, 1), dt.date(2018, 12, 31))
    null_ic, days = rank_ic(SampleSource(seed=3, planted_effect=0.0).fetch(UNIVERSE, *window))
    planted_ic, _ = rank_ic(SampleSource(seed=3, planted_effect=0.3).fetch(UNIVERSE, *window))
    # ~1000 daily ICs over 83 names: each has sd ~ 1/sqrt(82) ~ 0.11; overlapping 5-day returns and
    # the persistent feature inflate the variance of the mean ~3.6x, so its standard error is
    # ~0.11 * sqrt(3.6 / 1000) ~ 0.007, and 0.03 is over 4 standard errors.
    assert days > 950
    assert abs(null_ic) < 0.03
    assert planted_ic > 0.15  # ~0.23 expected for strength 0.3


SHIFT_DAY = dt.date(2016, 1, 4)
SHIFT_SYMBOLS = ["AAPL", "JPM", "XOM", "KO", "PFE"]


def _log_returns(source: SampleSource, start: dt.date, end: dt.date) -> pd.Series:
    bars = source.fetch(SHIFT_SYMBOLS, start, end).bars
    return bars.groupby("symbol")["close"].transform(lambda c: np.log(c).diff()).dropna()


def test_a_regime_shift_leaves_the_past_bit_identical_and_doubles_volatility_after() -> None:
    plain, shifted = SampleSource(seed=7), SampleSource(seed=7, regime_shift=RegimeShift(SHIFT_DAY, 2.0))
    before = dt.date(2015, 12, 31)
    pd.testing.assert_frame_equal(
        plain.fetch(SHIFT_SYMBOLS, dt.date(2015, 1, 2), before).bars,
        shifted.fetch(SHIFT_SYMBOLS, dt.date(2015, 1, 2), before).bars,
    )
    after = (dt.date(2016, 1, 5), dt.date(2016, 12, 30))
    ratio = _log_returns(shifted, *after).std() / _log_returns(plain, *after).std()
    assert 1.8 < ratio < 2.2


def test_a_shift_in_the_planted_effect_keeps_volatility() -> None:
    on = SampleSource(seed=7, planted_effect=0.3)
    off_later = SampleSource(seed=7, planted_effect=0.3, regime_shift=RegimeShift(SHIFT_DAY, planted_effect=0.0))
    after = (dt.date(2016, 1, 5), dt.date(2016, 12, 30))
    ratio = _log_returns(off_later, *after).std() / _log_returns(on, *after).std()
    assert 0.9 < ratio < 1.05
    assert not on.fetch(SHIFT_SYMBOLS, *after).bars.equals(off_later.fetch(SHIFT_SYMBOLS, *after).bars)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"volatility_multiplier": 0}, "volatility_multiplier"), ({"drift_change": float("inf")}, "drift_change")],
)
def test_a_bad_regime_shift_names_its_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"regime_shift.{field}"):
        RegimeShift(SHIFT_DAY, **kwargs)
