"""`simulate` on hand-checkable frames: timing, costs, price gaps, dividends and splits, look-ahead, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.backtest import BacktestInputError, simulate
from turbomode_dagster.prices import adjusted_bars

DATES = ["2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25"]
NO_SPLITS = pd.DataFrame(columns=["symbol", "date", "ratio"])
NO_DIVIDENDS = pd.DataFrame(columns=["symbol", "ex_date", "amount"])


def prices(symbol: str, opens: list[float], closes: list[float], dates: list[str] = DATES) -> pd.DataFrame:
    return pd.DataFrame({"symbol": symbol, "date": dates[: len(closes)], "open": opens, "close": closes})


def weights(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["symbol", "date", "weight"])


def bars(symbol: str, opens: list[float], closes: list[float]) -> pd.DataFrame:
    """As-traded OHLCV bars in the shape `adjusted_bars` takes."""
    frame = prices(symbol, opens, closes)
    return frame.assign(high=frame[["open", "close"]].max(axis=1), low=frame[["open", "close"]].min(axis=1), volume=1e6)


def test_a_weight_trades_at_the_next_open_and_equity_marks_at_the_close() -> None:
    market = prices("AAA", [10.0, 20.0, 30.0], [11.0, 22.0, 33.0])
    result = simulate(market, weights(("AAA", DATES[0], 1.0)), initial_cash=1_000.0)
    orders = result.orders
    assert orders[["date", "symbol"]].values.tolist() == [[DATES[1], "AAA"]]
    assert orders["shares"].item() == pytest.approx(50.0)  # 1,000 at the open of 20
    assert orders["price"].item() == 20.0
    assert result.equity.tolist() == pytest.approx([1_000.0, 50 * 22.0, 50 * 33.0])
    assert result.exposure.tolist() == pytest.approx([0.0, 1.0, 1.0])
    assert result.turnover.tolist() == pytest.approx([0.0, 0.5, 0.0])  # one-way: half of 1,000 traded


def test_costs_move_the_fill_against_the_trader_and_charge_the_notional() -> None:
    market = prices("AAA", [10.0, 20.0, 30.0, 40.0], [10.0, 20.0, 30.0, 40.0])
    plan = weights(("AAA", DATES[0], 0.5), ("AAA", DATES[1], 0.0))
    orders = simulate(market, plan, fees_bps=10.0, slippage_bps=50.0, initial_cash=1_000.0).orders
    buy, sell = orders.iloc[0], orders.iloc[1]
    assert buy["price"] == pytest.approx(20.0 * 1.005)
    # The target is sized at the open (as vectorbt sizes it); the trader pays the slipped price on it.
    assert buy["shares"] == pytest.approx(500.0 / 20.0)
    assert buy["fee"] == pytest.approx(25.0 * 20.0 * 1.005 * 0.001)
    assert sell["price"] == pytest.approx(30.0 * 0.995)
    assert sell["shares"] == pytest.approx(-buy["shares"])
    assert sell["fee"] == pytest.approx(-sell["shares"] * sell["price"] * 0.001)


def test_sells_run_before_buys_and_a_buy_the_cash_cannot_cover_is_cut() -> None:
    market = pd.concat([prices("AAA", [10.0] * 3, [10.0] * 3), prices("BBB", [10.0, 10.0, 5.0], [10.0, 10.0, 5.0])])
    # All in BBB, then all in AAA: the BBB sale at the open pays for the AAA buy, then fees cut it.
    plan = weights(("BBB", DATES[0], 1.0), ("AAA", DATES[1], 1.0))
    result = simulate(market, plan, fees_bps=100.0, initial_cash=1_000.0)
    last = result.orders[result.orders["date"] == DATES[2]]
    assert last["symbol"].tolist() == ["BBB", "AAA"]
    bbb_shares = 1_000.0 / 1.01 / 10.0  # the first buy was cut so that shares + fee spend 1,000
    proceeds = bbb_shares * 5.0 * (1 - 0.01)
    assert last["shares"].tolist() == pytest.approx([-bbb_shares, proceeds / 1.01 / 10.0])
    assert result.cash.iloc[-1] == 0.0


def test_a_held_symbol_without_a_price_keeps_its_last_close_and_trades_at_its_next_price() -> None:
    market = pd.concat(
        [
            prices("AAA", [10.0] * 5, [10.0] * 5),
            prices("BBB", [10.0, 10.0, 14.0], [10.0, 12.0, 14.0], dates=[DATES[0], DATES[1], DATES[4]]),
        ]
    )
    # Decided at the close of session 1: leave BBB. Its next price is session 4's open.
    plan = weights(("BBB", DATES[0], 1.0), ("AAA", DATES[1], 1.0))
    result = simulate(market, plan, initial_cash=1_000.0)
    held = 1_000.0 / 10.0
    assert result.equity.tolist() == pytest.approx([1_000.0, held * 12, held * 12, held * 12, held * 14])
    sells = result.orders[result.orders["symbol"] == "BBB"]
    assert sells["date"].tolist() == [DATES[1]]  # the exit decided on session 1 never traded on 2 or 3
    assert result.positions["BBB"].tolist() == pytest.approx([0.0, held, held, held, held])
    # The cash never came free, so AAA could not be bought.
    assert (result.orders["symbol"] == "AAA").sum() == 0


def test_on_total_return_prices_a_dividend_is_earned_and_a_split_changes_nothing() -> None:
    opens, closes = [100.0, 100.0, 100.0, 101.0, 103.0], [100.0, 101.0, 100.5, 102.0, 104.0]
    dividend = pd.DataFrame([("PAY", DATES[2], 1.01)], columns=["symbol", "ex_date", "amount"])
    plan = weights(("PAY", DATES[0], 1.0))
    paid = simulate(adjusted_bars(bars("PAY", opens, closes), NO_SPLITS, dividend), plan, initial_cash=1_000.0)
    as_traded = simulate(prices("PAY", opens, closes), plan, initial_cash=1_000.0)
    # Across the ex-date a holder has the new price plus the dividend, reinvested at that close:
    # the total-return path is the traded one with the 1.01 added back on 2026-11-23.
    reinvested = 1_000.0 / 100.0 * 101.0 / (101.0 - 1.01) * 104.0
    assert paid.equity.iloc[-1] == pytest.approx(reinvested, rel=1e-12)
    assert as_traded.equity.iloc[-1] == pytest.approx(1_000.0 / 100.0 * 104.0, rel=1e-12)

    split = pd.DataFrame([("SPL", DATES[2], 2.0)], columns=["symbol", "date", "ratio"])
    halved = (
        [p / 2 if i >= 2 else p for i, p in enumerate(opens)],
        [p / 2 if i >= 2 else p for i, p in enumerate(closes)],
    )
    split_plan = weights(("SPL", DATES[0], 1.0))
    after_split = simulate(adjusted_bars(bars("SPL", *halved), split, NO_DIVIDENDS), split_plan, initial_cash=1_000.0)
    no_split = simulate(prices("SPL", opens, closes), split_plan, initial_cash=1_000.0)
    np.testing.assert_allclose(after_split.equity.to_numpy(), no_split.equity.to_numpy(), rtol=1e-12)


def random_market(seed: int, sessions: int = 30, symbols: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2025-01-02", periods=sessions)
    names = [f"S{j}" for j in range(symbols)]
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.03, (sessions, symbols)), axis=0))
    frame = pd.DataFrame(
        {
            "symbol": np.tile(names, sessions),
            "date": np.repeat(dates, symbols),
            "open": (close * np.exp(rng.normal(0, 0.01, close.shape))).ravel(),
            "close": close.ravel(),
        }
    )
    gap = (frame["symbol"] == "S1") & frame["date"].between(dates[10], dates[12])  # held names go unpriced
    raw = rng.uniform(0, 1, (sessions, symbols)) * (rng.uniform(0, 1, (sessions, symbols)) < 0.6)
    raw[8:10, 1], raw[10:13, 1] = 0.5, 0.0
    target = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1e-12)
    plan = pd.DataFrame(
        {"symbol": np.tile(names, sessions), "date": np.repeat(dates, symbols), "weight": target.ravel()}
    )
    return frame[~gap].reset_index(drop=True), plan


def test_look_ahead_canary_later_prices_change_nothing_up_to_that_session() -> None:
    market, plan = random_market(seed=11)
    dates = np.sort(market["date"].unique())
    base = simulate(market, plan, fees_bps=5.0, slippage_bps=5.0)
    rng = np.random.default_rng(5)
    for t in range(len(dates) - 1):
        later = market["date"] > dates[t]
        shocked = market.copy()
        shocked.loc[later, ["open", "close"]] *= rng.uniform(0.5, 1.5, (int(later.sum()), 2))
        moved = simulate(shocked, plan, fees_bps=5.0, slippage_bps=5.0)
        upto = base.orders["date"] <= dates[t]
        pd.testing.assert_frame_equal(
            moved.orders[moved.orders["date"] <= dates[t]].reset_index(drop=True),
            base.orders[upto].reset_index(drop=True),
        )
        pd.testing.assert_series_equal(moved.equity.iloc[: t + 1], base.equity.iloc[: t + 1])
        # The canary is alive: the shock does reach the next session's equity.
        assert moved.equity.iloc[t + 1] != base.equity.iloc[t + 1]


@pytest.mark.parametrize(
    ("market", "plan", "message"),
    [
        (prices("AAA", [1.0], [1.0]).drop(columns="open"), weights(), r"prices is missing column\(s\) \['open'\]"),
        (prices("AAA", [1.0], [1.0]), weights().drop(columns="weight"), r"weights is missing column\(s\) \['weight'\]"),
        (
            pd.concat([prices("AAA", [1.0], [1.0]), prices("AAA", [2.0], [2.0])]),
            weights(),
            "more than one row for symbol AAA on 2026-11-19",
        ),
        (prices("AAA", [1.0, 1.0], [1.0, np.nan]), weights(), r"prices.close .* AAA on 2026-11-20 has nan"),
        (prices("AAA", [1.0, 0.0], [1.0, 1.0]), weights(), r"prices.open .* AAA on 2026-11-20 has 0.0"),
        (
            prices("AAA", [1.0, 1.0], [1.0, 1.0]),
            weights(("AAA", DATES[0], 0.5), ("AAA", DATES[0], 0.5)),
            "weights has more than one row for symbol AAA on 2026-11-19",
        ),
        (
            prices("AAA", [1.0], [1.0]),
            weights(("AAA", DATES[0], -0.1)),
            r">= 0 \(long only\): symbol AAA on 2026-11-19",
        ),
        (prices("AAA", [1.0], [1.0]), weights(("AAA", DATES[0], np.inf)), "finite .* symbol AAA on 2026-11-19 has inf"),
        (
            pd.concat([prices("AAA", [1.0], [1.0]), prices("BBB", [1.0], [1.0])]),
            weights(("AAA", DATES[0], 0.6), ("BBB", DATES[0], 0.6)),
            "weights on 2026-11-19 sum to 1.2",
        ),
        (prices("AAA", [1.0], [1.0]), weights(("ZZZ", DATES[0], 0.5)), "symbol ZZZ on 2026-11-19, which has no price"),
        (prices("AAA", [1.0], [1.0]), weights(("AAA", DATES[1], 0.5)), "symbol AAA on 2026-11-20, which has no price"),
    ],
)
def test_bad_input_is_refused_naming_the_column_symbol_and_date(
    market: pd.DataFrame, plan: pd.DataFrame, message: str
) -> None:
    with pytest.raises(BacktestInputError, match=message):
        simulate(market, plan)


def test_a_zero_weight_needs_no_price_and_bad_costs_are_refused() -> None:
    market = prices("AAA", [1.0, 1.0], [1.0, 1.0])
    result = simulate(market, weights(("AAA", DATES[0], 1.0), ("GONE", DATES[0], 0.0)), initial_cash=100.0)
    assert result.orders["symbol"].tolist() == ["AAA"]
    for keyword, value in (("fees_bps", -1.0), ("slippage_bps", np.nan), ("initial_cash", 0.0)):
        with pytest.raises(BacktestInputError, match=keyword):
            simulate(market, weights(), **{keyword: value})


def test_weights_that_never_trade_leave_cash_alone_and_no_trades() -> None:
    result = simulate(prices("AAA", [1.0, 1.0], [1.0, 1.0]), weights(("AAA", DATES[1], 1.0)), initial_cash=50.0)
    assert result.orders.empty and result.trades.empty  # decided on the last session: nothing after it
    assert result.equity.tolist() == [50.0, 50.0]
