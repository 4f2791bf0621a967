"""`simulate` against vectorbt 1.0.0's `Portfolio.from_orders` itself: every order and every equity value.

The fixture trades six symbols over 80 sessions: rebalances on some sessions and none on others,
entries and full exits, weights summing to 1 (so buys run out of cash, more so with fees and
slippage), a symbol that lists late and a held symbol with a two-session price gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.backtest import simulate

vbt = pytest.importorskip("vectorbt")

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
SESSIONS = 80
TOLERANCE = 1e-9


def market(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long prices and weights for the fixture described in the module docstring."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-02", periods=SESSIONS)
    close = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, (SESSIONS, len(SYMBOLS))), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, close.shape))
    listed = np.ones(close.shape, dtype=bool)
    listed[:20, 4] = False  # EEE lists on session 20
    listed[41:43, 1] = False  # BBB, held, has no bars on sessions 41-42
    prices = pd.DataFrame(
        {
            "symbol": np.tile(SYMBOLS, SESSIONS),
            "date": np.repeat(dates, len(SYMBOLS)),
            "open": open_.ravel(),
            "close": close.ravel(),
        }
    )[listed.ravel()]
    rows = []
    for day in range(0, SESSIONS, 1):
        if day % 7 in (3, 5):
            continue  # no decision these sessions: holdings drift
        priced = [s for j, s in enumerate(SYMBOLS) if listed[day, j]]
        chosen = list(rng.choice(priced, size=rng.integers(1, len(priced) + 1), replace=False))
        if day == 39:
            chosen = ["BBB", "CCC"]  # BBB is held into its gap ...
        if day in (40, 41):
            chosen = ["AAA", "CCC", "DDD", "EEE", "FFF"]  # ... so its sale waits and these buys run short
        raw = rng.uniform(0.2, 1.0, len(chosen))
        total = 1.0 if day % 3 or day in (39, 40, 41) else rng.uniform(0.5, 1.0)
        for symbol, weight in zip(chosen, raw / raw.sum() * total, strict=True):
            rows.append((symbol, dates[day], weight))
    weights = pd.DataFrame(rows, columns=["symbol", "date", "weight"])
    return prices.reset_index(drop=True), weights


def vectorbt_portfolio(prices: pd.DataFrame, weights: pd.DataFrame, fees: float, slippage: float, cash: float):
    """The reference: the same frames, wide, through `from_orders` with the documented arguments."""
    close = prices.pivot(index="date", columns="symbol", values="close").sort_index()[SYMBOLS]
    open_ = prices.pivot(index="date", columns="symbol", values="open").reindex_like(close)
    wide = weights.pivot(index="date", columns="symbol", values="weight").reindex(columns=SYMBOLS).fillna(0.0)
    size = wide.reindex(close.index).shift(1)
    return vbt.Portfolio.from_orders(
        close,
        size=size,
        size_type="targetpercent",
        price=open_,
        fees=fees,
        slippage=slippage,
        init_cash=cash,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        direction="longonly",
    )


def assert_close(ours: np.ndarray, theirs: np.ndarray, what: str, scale: float = 0.0) -> None:
    """Relative difference at most TOLERANCE, relative to `scale` where that is larger than the value."""
    scale = np.maximum(np.abs(theirs), max(scale, 1e-300))
    worst = float(np.max(np.abs(ours - theirs) / scale)) if len(theirs) else 0.0
    assert worst <= TOLERANCE, f"{what}: largest relative difference {worst:.3g}"


@pytest.mark.parametrize(("fees_bps", "slippage_bps"), [(0.0, 0.0), (25.0, 15.0)])
def test_equity_and_every_order_match_vectorbt(fees_bps: float, slippage_bps: float) -> None:
    prices, weights = market()
    ours = simulate(prices, weights, fees_bps=fees_bps, slippage_bps=slippage_bps, initial_cash=100_000.0)
    pf = vectorbt_portfolio(prices, weights, fees_bps / 1e4, slippage_bps / 1e4, 100_000.0)

    records = pf.orders.records
    theirs = pd.DataFrame(
        {
            "date": pf.wrapper.index[records["idx"]],
            "symbol": np.array(SYMBOLS)[records["col"]],
            "shares": np.where(records["side"] == 0, records["size"], -records["size"]),
            "price": records["price"],
            "fee": records["fees"],
        }
    )
    # vectorbt lists orders by column; ours are in execution order. Compare on (date, symbol).
    ours_orders = ours.orders.sort_values(["date", "symbol"]).reset_index(drop=True)
    theirs = theirs.sort_values(["date", "symbol"]).reset_index(drop=True)
    assert len(ours_orders) == len(theirs) > 100
    assert (ours_orders[["date", "symbol"]] == theirs[["date", "symbol"]]).all().all()
    for column in ("shares", "price", "fee"):
        assert_close(ours_orders[column].to_numpy(), theirs[column].to_numpy(), column)
    assert_close(ours.equity.to_numpy(), pf.value().to_numpy(), "equity")
    # vectorbt rebuilds cash from its order records afterwards, so a spent-out account reads about
    # -1e-11 there and 0 here: cash is compared relative to the starting capital.
    assert_close(ours.cash.to_numpy(), pf.cash().to_numpy(), "cash", scale=100_000.0)


def test_fixture_exercises_cash_limited_buys_and_exits() -> None:
    """The parity fixture is only a proof if it contains the hard cases: cut buys and full exits."""
    prices, weights = market()
    pf = vectorbt_portfolio(prices, weights, 25e-4, 15e-4, 100_000.0)
    assets = pf.assets()
    exits = ((assets.shift(1) > 0) & (assets == 0)).to_numpy().sum()
    assert exits >= 10
    # A cut buy leaves the cash at exactly zero after a session that traded.
    assert (pf.cash().to_numpy() == 0).sum() >= 5


def test_round_trips_match_vectorbt_positions() -> None:
    """Our round trips are vectorbt's positions: same entries, exits, status and PnL (open ones at the last close)."""
    prices, weights = market()
    ours = simulate(prices, weights, fees_bps=25.0, slippage_bps=15.0, initial_cash=100_000.0).trades
    theirs = vectorbt_portfolio(prices, weights, 25e-4, 15e-4, 100_000.0).positions.records_readable
    theirs = theirs.sort_values(["Entry Timestamp", "Column"], kind="stable").reset_index(drop=True)
    assert len(ours) == len(theirs) > 50
    assert ours["symbol"].tolist() == theirs["Column"].tolist()
    assert (ours["entry_date"].to_numpy() == theirs["Entry Timestamp"].to_numpy()).all()
    assert ours["closed"].tolist() == (theirs["Status"] == "Closed").tolist()
    closed = ours["closed"].to_numpy()
    assert (ours["exit_date"][closed].to_numpy() == theirs["Exit Timestamp"][closed].to_numpy()).all()
    assert_close(ours["pnl"].to_numpy(), theirs["PnL"].to_numpy(), "pnl", scale=1.0)
