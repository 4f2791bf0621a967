"""The backtest engine: target weights decided at a close, traded at the next open, one shared cash account.

Semantics are vectorbt 1.0.0's `Portfolio.from_orders(close, size=weights.shift(1),
size_type="targetpercent", price=open, fees=f, slippage=s, init_cash=C, cash_sharing=True,
group_by=True, call_seq="auto", direction="longonly")`, reproduced with one NumPy step per session:

* the portfolio is valued once per session at that session's opens (a symbol without an open keeps its
  last open), before any order; each target value is `weight x that value`;
* orders run in increasing order of `target value - current value` (ties in symbol order), so sells
  free cash before buys; a buy the cash cannot cover is cut to `cash / (price x (1 + s) x (1 + f))`,
  and later buys that session get nothing;
* fills are at `open x (1 + s)` for buys and `open x (1 - s)` for sells; the fee is `f` of the notional;
* equity is cash plus every holding at that session's close (a held symbol without a close keeps its
  last close).

Input conventions (see `simulate`): a date present in `weights` is a rebalance date, and a symbol
absent that date targets 0; sessions without weights trade nothing. A held symbol with no price on a
session cannot trade there: that session's order for it is skipped (the next rebalance applies) and it
is valued at its last close, which is also what happens to a holding that stops having prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PRICE_KEYS = ("symbol", "date", "open", "close")
WEIGHT_KEYS = ("symbol", "date", "weight")
ORDER_COLUMNS = ("date", "symbol", "shares", "price", "fee")
TRADE_COLUMNS = ("symbol", "entry_date", "exit_date", "closed", "cost", "pnl", "return", "fees")
# vectorbt's tolerances (vectorbt.utils.math_): two floats are "close" within these, a value that
# close to zero is zero. Matching them keeps the same orders filled, cut or dropped.
REL_TOL = 1e-9
ABS_TOL = 1e-12
WEIGHT_SUM_TOL = 1e-9


class BacktestInputError(ValueError):
    """Prices or weights a backtest cannot run on; the message names the column, symbol and date."""


@dataclass(frozen=True)
class BacktestResult:
    """What one simulation produced, by session (the sorted price dates) and symbol (sorted).

    equity: value at each session's close; cash: cash after that session's orders; positions: shares
    held at each close (sessions x symbols); exposure: held value / equity at each close; turnover:
    one-way turnover per session (half the traded notional over the value at that open); orders: the
    fills in execution order; trades: round trips (symbol, entry_date, exit_date, closed, cost, pnl,
    return, fees; see `_round_trips`).
    """

    equity: pd.Series
    cash: pd.Series
    positions: pd.DataFrame
    exposure: pd.Series
    turnover: pd.Series
    orders: pd.DataFrame
    trades: pd.DataFrame
    initial_cash: float


def simulate(
    prices: pd.DataFrame,
    weights: pd.DataFrame,
    *,
    fees_bps: float = 0.0,
    slippage_bps: float = 0.0,
    initial_cash: float = 1_000_000.0,
) -> BacktestResult:
    """Trade `weights` (symbol, date, weight: decided at that close) on `prices` (symbol, date, open, close).

    Prices are one basis throughout, normally total-return prices from `prices.adjusted_bars`, so
    dividends are credited through the price. Long only: weights are >= 0 and sum to at most 1 a date.
    A nonzero weight needs a price row for its symbol and date; a zero weight needs none.
    """
    _check_costs(fees_bps, slippage_bps, initial_cash)
    panel = price_panel(prices)
    return simulate_panel(
        panel, decided_weights(weights, panel), fees_bps=fees_bps, slippage_bps=slippage_bps, initial_cash=initial_cash
    )


def simulate_panel(
    panel: PricePanel,
    decided: np.ndarray,
    *,
    fees_bps: float = 0.0,
    slippage_bps: float = 0.0,
    initial_cash: float = 1_000_000.0,
) -> BacktestResult:
    """`simulate` on prices and weights already laid out as sessions x symbols grids, for many runs on one panel.

    `decided[i, j]` is the weight of symbol j decided at the close of session i; a NaN cell places no
    order for that symbol, so a row of NaN is a session without a rebalance.
    """
    _check_costs(fees_bps, slippage_bps, initial_cash)
    targets = _traded_targets(decided, panel)
    fees, slippage = fees_bps / 10_000.0, slippage_bps / 10_000.0
    run = _run(panel.open, panel.close, targets, fees, slippage, float(initial_cash))
    return _result(panel, run, float(initial_cash))


@dataclass(frozen=True)
class PricePanel:
    """Prices as sessions x symbols grids over the sorted dates and symbols of the price rows."""

    dates: pd.Index
    symbols: pd.Index
    open: np.ndarray  # sessions x symbols, NaN where no bar
    close: np.ndarray


@dataclass(frozen=True)
class _Run:
    cash: np.ndarray
    positions: np.ndarray
    traded: np.ndarray  # per session, sum of |filled notional|
    open_value: np.ndarray  # per session, the value the targets were fractions of
    fills: tuple[np.ndarray, ...]  # session, symbol, shares (signed), price, fee, position after


def _check_costs(fees_bps: float, slippage_bps: float, initial_cash: float) -> None:
    for name, value, floor in (("fees_bps", fees_bps, 0.0), ("slippage_bps", slippage_bps, 0.0)):
        if not _number_at_least(value, floor, strict=False):
            raise BacktestInputError(f"{name} must be a finite number >= 0, got {value!r}")
    if not _number_at_least(initial_cash, 0.0, strict=True):
        raise BacktestInputError(f"initial_cash must be a finite number > 0, got {initial_cash!r}")


def _number_at_least(value: object, floor: float, strict: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    return bool(np.isfinite(value)) and (value > floor if strict else value >= floor)


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise BacktestInputError(f"{name} is missing column(s) {missing}; it needs {list(columns)}")


def _require_keys(frame: pd.DataFrame, name: str) -> None:
    for column in ("symbol", "date"):
        missing = frame[column].isna().to_numpy()
        if missing.any():
            raise BacktestInputError(f"{name}.{column} is empty in row {int(np.argmax(missing))} (counting from 0)")


def _first_duplicate(frame: pd.DataFrame, name: str) -> None:
    duplicated = frame.duplicated(["symbol", "date"])
    if duplicated.any():
        row = frame.iloc[int(np.argmax(duplicated.to_numpy()))]
        raise BacktestInputError(f"{name} has more than one row for symbol {row['symbol']} on {row['date']}")


def price_panel(prices: pd.DataFrame) -> PricePanel:
    """The open and close grids of price rows (symbol, date, open, close), checked: one finite, positive row a cell."""
    _require_columns(prices, PRICE_KEYS, "prices")
    if prices.empty:
        raise BacktestInputError("prices is empty")
    _require_keys(prices, "prices")
    for column in ("open", "close"):
        values = pd.to_numeric(prices[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            row = prices.iloc[int(np.argmax(bad))]
            raise BacktestInputError(
                f"prices.{column} must be finite and > 0: symbol {row['symbol']} on {row['date']} has {row[column]}"
            )
    date_codes, dates = _sorted_codes(prices["date"])
    symbol_codes, symbols = _sorted_codes(prices["symbol"])
    shape = (len(dates), len(symbols))
    cell = date_codes * shape[1] + symbol_codes
    if np.bincount(cell, minlength=shape[0] * shape[1]).max() > 1:
        _first_duplicate(prices, "prices")
    open_ = np.full(shape, np.nan)
    close = np.full(shape, np.nan)
    open_.ravel()[cell] = prices["open"].to_numpy(dtype=float)
    close.ravel()[cell] = prices["close"].to_numpy(dtype=float)
    return PricePanel(pd.Index(dates, name="date"), pd.Index(symbols, name="symbol"), open_, close)


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes into the sorted distinct values (pandas' sort=True, without re-sorting every row)."""
    codes, uniques = pd.factorize(values)
    order = np.argsort(np.asarray(uniques), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], pd.Index(uniques).take(order)


def decided_weights(weights: pd.DataFrame, panel: PricePanel) -> np.ndarray:
    """Long weights (symbol, date, weight) as `simulate_panel`'s grid: a date present is a rebalance, where a
    symbol absent targets 0; other sessions are NaN rows. Each bad row is named by symbol and date."""
    _require_columns(weights, WEIGHT_KEYS, "weights")
    _require_keys(weights, "weights")
    values = pd.to_numeric(weights["weight"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = weights.iloc[int(np.argmax(bad))]
        raise BacktestInputError(
            f"weights.weight must be finite and >= 0 (long only): symbol {row['symbol']} on {row['date']} "
            f"has {row['weight']}"
        )
    _first_duplicate(weights, "weights")
    symbol_at = panel.symbols.get_indexer(weights["symbol"])
    date_at = panel.dates.get_indexer(weights["date"])
    unpriced = (symbol_at < 0) | (date_at < 0)
    unpriced[~unpriced] = np.isnan(panel.close[date_at[~unpriced], symbol_at[~unpriced]])
    unpriced &= values != 0
    if unpriced.any():
        at = int(np.argmax(unpriced))
        row = weights.iloc[at]
        why = (
            "which is not a price session (no symbol has a price row that date)"
            if date_at[at] < 0
            else ("which has no price row")
        )
        raise BacktestInputError(
            f"weights has weight {row['weight']} for symbol {row['symbol']} on {row['date']}, {why}"
        )
    decided = np.full(panel.close.shape, np.nan)
    priced = (symbol_at >= 0) & (date_at >= 0)
    decided[np.unique(date_at[date_at >= 0])] = 0.0
    decided[date_at[priced], symbol_at[priced]] = values[priced]
    return decided


def _traded_targets(decided: np.ndarray, panel: PricePanel) -> np.ndarray:
    """Weights as traded: row i holds the targets decided at the close of session i - 1 (NaN: no order)."""
    if decided.shape != panel.close.shape:
        raise BacktestInputError(f"weights grid has shape {decided.shape}, the price panel {panel.close.shape}")
    bad = ~np.isnan(decided) & (~np.isfinite(decided) | (decided < 0))
    unpriced = (np.nan_to_num(decided) != 0) & np.isnan(panel.close)
    for problem, why in ((bad, "must be finite and >= 0 (long only)"), (unpriced, "is nonzero without a price row")):
        if problem.any():
            day, column = np.unravel_index(int(np.argmax(problem)), problem.shape)
            raise BacktestInputError(
                f"weight {decided[day, column]} for symbol {panel.symbols[column]} on {panel.dates[day]} {why}"
            )
    sums = np.nansum(decided, axis=1)
    over = sums > 1.0 + WEIGHT_SUM_TOL
    if over.any():
        day = int(np.argmax(over))
        raise BacktestInputError(
            f"weights on {panel.dates[day]} sum to {float(sums[day])!r}, above 1 (long only, no leverage)"
        )
    traded = np.full(decided.shape, np.nan)
    traded[1:] = decided[:-1]
    return traded


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


def _first_short_buy(buy: np.ndarray, cost: np.ndarray, cash_before: np.ndarray) -> int | None:
    """The first buy with no cash left, or costing the cash within tolerance, or more; None if every buy is covered."""
    # A cheap superset first (cost within twice the tolerance of the cash, or above), then the exact test.
    for k in np.flatnonzero(buy & (cost * (1 + 2 * REL_TOL) + ABS_TOL >= cash_before)):
        if cash_before[k] <= ABS_TOL or cost[k] > cash_before[k] or _close(cost[k], cash_before[k]):
            return int(k)
    return None


def _run(open_: np.ndarray, close: np.ndarray, targets: np.ndarray, fees: float, slippage: float, cash: float) -> _Run:
    """One vectorised step per session over the symbols that can act: priced, with a target, held or wanted."""
    n_sessions, n_symbols = close.shape
    position = np.zeros(n_symbols)
    cash_by_session = np.empty(n_sessions)
    positions = np.empty((n_sessions, n_symbols))
    traded = np.zeros(n_sessions)
    open_value = np.full(n_sessions, np.nan)
    fills: list[tuple[np.ndarray, ...]] = []
    # Per session and symbol, all at once: the valuation price (the last open seen), whether an order
    # can fill (an open and a target), and whether it is wanted even from a flat book (a nonzero target).
    valuation = pd.DataFrame(open_).ffill().to_numpy()
    tradable = ~np.isnan(open_) & ~np.isnan(targets)
    wanted = tradable & (targets != 0)
    decides = tradable.any(axis=1)
    for i in range(n_sessions):
        held = np.flatnonzero(position)
        holding = position[held]
        # Sequential sum in column order, as vectorbt values the group.
        value = float(np.cumsum(np.concatenate(([cash], holding * valuation[i, held])))[-1]) if held.size else cash
        open_value[i] = value
        dust = np.abs(holding) <= ABS_TOL
        if dust.any():
            position[held[dust]] = 0.0
        if abs(cash) <= ABS_TOL:
            cash = 0.0
        if decides[i] and value > 0:
            # A flat symbol with a zero target would be an order vectorbt drops: leave it out.
            acting = np.flatnonzero(wanted[i] | (tradable[i] & (position != 0)))
            if acting.size:
                cash, filled = _trade_session(
                    cash, value, acting, targets[i, acting], open_[i, acting], position[acting], fees, slippage
                )
                if filled is not None:
                    columns, shares, fill_price, fee, after = filled
                    position[columns] = after
                    fills.append((np.full(columns.size, i), columns, shares, fill_price, fee, after))
                    traded[i] = float(np.abs(shares) @ fill_price)
        cash_by_session[i] = cash
        positions[i] = position
    columns = tuple(np.concatenate(parts) for parts in zip(*fills, strict=True)) if fills else _no_fills()
    return _Run(cash_by_session, positions, traded, open_value, columns)


def _no_fills() -> tuple[np.ndarray, ...]:
    return (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), *(np.empty(0) for _ in range(4)))


def _trade_session(
    cash: float,
    value: float,
    columns: np.ndarray,
    weight: np.ndarray,
    price: np.ndarray,
    held: np.ndarray,
    fees: float,
    slippage: float,
) -> tuple[float, tuple[np.ndarray, ...] | None]:
    """Fill one session's orders in call order: the cash after them, and the fills (columns, shares, price, fee, after).

    All inputs are per acting symbol, in column order; the valuation price is the open (`price`).
    """
    target_value = weight * value
    sequence = np.argsort(target_value - held * price, kind="stable")
    size = (target_value / price - held)[sequence]
    columns, price, held = columns[sequence], price[sequence], held[sequence]
    is_sell = size <= 0
    sell_size = np.minimum(held, -size)
    sell = is_sell & (held != 0) & (np.abs(sell_size) > ABS_TOL)
    buy = ~is_sell & (size > ABS_TOL)
    fill_price = price * np.where(is_sell, 1 - slippage, 1 + slippage)
    shares = np.where(sell, -sell_size, np.where(buy, size, 0.0))
    notional = np.abs(shares) * fill_price
    fee = notional * fees
    # Cash before each order, summed in call order exactly as vectorbt steps through it (x + -y == x - y).
    flows = np.where(sell, notional - fee, -(notional + fee))
    running = np.cumsum(np.concatenate(([cash], flows)))
    cash_before = running[:-1]
    filled = sell | buy
    cost = notional + fee
    k = _first_short_buy(buy, cost, cash_before)
    if k is None:
        cash = float(running[-1])
    else:
        # The first buy that meets the end of the cash: with none left it is dropped, within tolerance
        # of the cash it is filled whole, beyond it it is cut to what the cash pays; later buys get nothing.
        filled[k + 1 :] &= ~buy[k + 1 :]
        available = cash_before[k]
        if available <= ABS_TOL:
            filled[k] = False
        elif not _close(cost[k], available):
            spend = available / (1 + fees)
            shares[k] = spend / fill_price[k]
            fee[k] = available - spend
        cash = 0.0
    if not filled.any():
        return cash, None
    shares, held = shares[filled], held[filled]
    after = held + shares
    # A sale within tolerance of the whole holding closes it (vectorbt's add_nb); buys never land here.
    after[after <= np.maximum(REL_TOL * held, ABS_TOL)] = 0.0
    return cash, (columns[filled], shares, fill_price[filled], fee[filled], after)


def _result(panel: PricePanel, run: _Run, initial_cash: float) -> BacktestResult:
    marked = pd.DataFrame(panel.close).ffill().to_numpy()
    held_value = np.where(run.positions != 0, run.positions * np.nan_to_num(marked), 0.0).sum(axis=1)
    equity = run.cash + held_value
    session, symbol, shares, price, fee, _ = run.fills
    orders = pd.DataFrame(
        {
            "date": panel.dates.to_numpy()[session],
            "symbol": panel.symbols.to_numpy()[symbol],
            "shares": shares,
            "price": price,
            "fee": fee,
        },
        columns=list(ORDER_COLUMNS),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        turnover = np.where(run.open_value > 0, run.traded / 2.0 / run.open_value, 0.0)
    return BacktestResult(
        equity=pd.Series(equity, index=panel.dates, name="equity"),
        cash=pd.Series(run.cash, index=panel.dates, name="cash"),
        positions=pd.DataFrame(run.positions, index=panel.dates, columns=panel.symbols),
        exposure=pd.Series(np.where(equity > 0, held_value / equity, 0.0), index=panel.dates, name="exposure"),
        turnover=pd.Series(turnover, index=panel.dates, name="turnover"),
        orders=orders,
        trades=_round_trips(panel, run.fills, np.nan_to_num(marked[-1])),
        initial_cash=initial_cash,
    )


def _round_trips(panel: PricePanel, fills: tuple[np.ndarray, ...], last_close: np.ndarray) -> pd.DataFrame:
    """Round trips: from a symbol's first buy out of a flat book to the order that leaves it flat again.

    Every fill in between (adds and trims) belongs to the trip. `cost` is what the buys paid (fees
    included), `pnl` the net cash the trip returned (sells minus buys minus fees) and `return` pnl /
    cost. A trip still open at the end is marked at the last close (`closed` False, no `exit_date`).
    """
    if not len(fills[0]):
        return pd.DataFrame(columns=list(TRADE_COLUMNS))
    # Each symbol's fills in time order (fills come session by session).
    order = np.argsort(fills[1], kind="stable")
    session, symbol, shares, price, fee, after = (column[order] for column in fills)
    flat = after == 0
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (symbol[1:] != symbol[:-1]) | flat[:-1]
    trip = np.cumsum(starts) - 1
    ends = np.flatnonzero(np.append(starts[1:], True))
    paid = np.where(shares > 0, shares * price + fee, 0.0)
    flow = -shares * price - fee
    closed = flat[ends]
    held = np.where(closed, 0.0, after[ends] * last_close[symbol[ends]])
    pnl = np.bincount(trip, flow, minlength=len(ends)) + held
    cost = np.bincount(trip, paid, minlength=len(ends))
    entry = session[starts]
    dates = panel.dates.to_numpy()
    exit_date = pd.Series(dates[session[ends]]).where(closed)
    trips = pd.DataFrame(
        {
            "symbol": panel.symbols.to_numpy()[symbol[ends]],
            "entry_date": dates[entry],
            "exit_date": exit_date,
            "closed": closed,
            "cost": cost,
            "pnl": pnl,
            "return": pnl / cost,
            "fees": np.bincount(trip, fee, minlength=len(ends)),
        },
        columns=list(TRADE_COLUMNS),
    )
    return trips.iloc[np.lexsort((symbol[ends], entry))].reset_index(drop=True)
