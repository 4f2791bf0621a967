"""Performance metrics of a backtest: one formula each, over an equity curve, its orders, trades and exposure.

Conventions: returns are session-on-session changes of the equity at the close; years are 252
sessions; the risk-free rate is 0. Ratios that divide by a zero spread (a flat curve, no losing
session, no drawdown) are NaN rather than infinite. Hit rate and profit factor count closed round
trips only (`BacktestResult.trades` with `closed`), each the whole life of a position from a flat
book back to flat, adds and trims included, net of fees: a trip still open has no result yet.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from turbomode_dagster.backtest.engine import BacktestResult

SESSIONS_PER_YEAR = 252
METRICS = (
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration",
    "calmar",
    "hit_rate",
    "profit_factor",
    "turnover",
    "average_exposure",
    "number_of_trades",
    "total_fees",
)
BENCHMARK_METRICS = ("excess_return", "information_ratio", "beta")


def session_returns(equity: pd.Series) -> pd.Series:
    """Close-to-close returns; the first session has none."""
    return equity.pct_change().iloc[1:]


def total_return(equity: pd.Series) -> float:
    """Last value over first, minus 1."""
    return float(equity.iloc[-1] / equity.iloc[0] - 1.0)


def cagr(equity: pd.Series) -> float:
    """Compound annual growth rate over the sessions of `equity` (252 a year)."""
    years = (len(equity) - 1) / SESSIONS_PER_YEAR
    if years <= 0:
        return math.nan
    return float((equity.iloc[-1] / equity.iloc[0]) ** (1.0 / years) - 1.0)


def annual_volatility(equity: pd.Series) -> float:
    """Sample standard deviation of session returns, times sqrt(252)."""
    returns = session_returns(equity)
    if len(returns) < 2:
        return math.nan
    return float(returns.std(ddof=1) * math.sqrt(SESSIONS_PER_YEAR))


def sharpe(equity: pd.Series) -> float:
    """Mean over sample standard deviation of session returns, times sqrt(252); risk-free rate 0."""
    return _annualised_ratio(session_returns(equity))


def sortino(equity: pd.Series) -> float:
    """Annual mean return over annualised downside deviation (root mean square of the negative returns, 0 target)."""
    returns = session_returns(equity).to_numpy()
    if len(returns) < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)) * SESSIONS_PER_YEAR)
    return float(np.mean(returns) * SESSIONS_PER_YEAR / downside) if downside > 0 else math.nan


def drawdown(equity: pd.Series) -> pd.Series:
    """Fraction below the highest value so far (0 at a new high, negative below it)."""
    return equity / equity.cummax() - 1.0


def max_drawdown(equity: pd.Series) -> float:
    """The deepest drawdown, as a fraction <= 0."""
    return float(drawdown(equity).min())


def max_drawdown_duration(equity: pd.Series) -> int:
    """The most consecutive sessions spent below an earlier high (recovered or not)."""
    under = (drawdown(equity) < 0).to_numpy()
    longest = run = 0
    for below in under:
        run = run + 1 if below else 0
        longest = max(longest, run)
    return longest


def calmar(equity: pd.Series) -> float:
    """CAGR over the size of the maximum drawdown."""
    deepest = max_drawdown(equity)
    return cagr(equity) / -deepest if deepest < 0 else math.nan


def hit_rate(trades: pd.DataFrame) -> float:
    """Share of closed round trips with a positive net result."""
    pnl = _closed_pnl(trades)
    return float((pnl > 0).mean()) if len(pnl) else math.nan


def profit_factor(trades: pd.DataFrame) -> float:
    """Net gains of the winning closed round trips over the net losses of the losing ones."""
    pnl = _closed_pnl(trades)
    losses = -pnl[pnl < 0].sum()
    return float(pnl[pnl > 0].sum() / losses) if losses > 0 else math.nan


def turnover(session_turnover: pd.Series) -> float:
    """One-way turnover a year: the per-session one-way turnover summed, over the years covered."""
    years = (len(session_turnover) - 1) / SESSIONS_PER_YEAR
    return float(session_turnover.iloc[1:].sum() / years) if years > 0 else math.nan


def average_exposure(exposure: pd.Series) -> float:
    """Mean share of equity held in positions at the close, over the sessions given."""
    return float(exposure.mean())


def number_of_trades(orders: pd.DataFrame) -> int:
    """Filled orders (each buy or sell of one symbol on one session)."""
    return len(orders)


def total_fees(orders: pd.DataFrame) -> float:
    """Sum of the fees paid."""
    return float(orders["fee"].sum())


def excess_return(equity: pd.Series, benchmark: pd.Series) -> float:
    """CAGR of the strategy minus CAGR of the benchmark on the same sessions."""
    _same_sessions(equity, benchmark)
    return cagr(equity) - cagr(benchmark)


def information_ratio(equity: pd.Series, benchmark: pd.Series) -> float:
    """Mean over sample standard deviation of session active returns (strategy - benchmark), times sqrt(252)."""
    _same_sessions(equity, benchmark)
    return _annualised_ratio(session_returns(equity) - session_returns(benchmark))


def beta(equity: pd.Series, benchmark: pd.Series) -> float:
    """Covariance of session returns with the benchmark's, over the benchmark's variance."""
    _same_sessions(equity, benchmark)
    ours, theirs = session_returns(equity).to_numpy(), session_returns(benchmark).to_numpy()
    if len(theirs) < 2:
        return math.nan
    variance = float(np.var(theirs))
    if variance == 0:
        return math.nan
    return float(np.mean((ours - ours.mean()) * (theirs - theirs.mean())) / variance)


def summarize(
    result: BacktestResult, benchmark: pd.Series | None = None, *, start: object = None, end: object = None
) -> dict[str, float]:
    """Every metric for `result` (and against `benchmark`, an equity curve on the same sessions), in `METRICS` order.

    With `start` / `end` (inclusive session dates) the metrics cover that window, as for one
    walk-forward fold: returns start from the close of the session before `start` (so fold returns
    chain into the total), and orders, turnover and exposure are those of the window's sessions and
    round trips those closed within it.
    """
    sessions = result.equity.index
    first = 0 if start is None else int(sessions.searchsorted(start, side="left"))
    last = len(sessions) if end is None else int(sessions.searchsorted(end, side="right"))
    if first >= last:
        raise ValueError(f"no sessions between start {start} and end {end}")
    base = max(first - 1, 0)
    equity = result.equity.iloc[base:last]
    window = sessions[first:last]
    orders = result.orders[result.orders["date"].isin(window)]
    trades = result.trades[result.trades["closed"] & result.trades["exit_date"].isin(window)]
    values: dict[str, float] = {
        "total_return": total_return(equity),
        "cagr": cagr(equity),
        "annual_volatility": annual_volatility(equity),
        "sharpe": sharpe(equity),
        "sortino": sortino(equity),
        "max_drawdown": max_drawdown(equity),
        "max_drawdown_duration": float(max_drawdown_duration(equity)),
        "calmar": calmar(equity),
        "hit_rate": hit_rate(trades),
        "profit_factor": profit_factor(trades),
        "turnover": turnover(result.turnover.iloc[base:last]),
        "average_exposure": average_exposure(result.exposure.iloc[first:last]),
        "number_of_trades": float(number_of_trades(orders)),
        "total_fees": total_fees(orders),
    }
    if benchmark is not None:
        reference = benchmark.iloc[base:last] if benchmark.index.equals(sessions) else benchmark
        values["excess_return"] = excess_return(equity, reference)
        values["information_ratio"] = information_ratio(equity, reference)
        values["beta"] = beta(equity, reference)
    return values


def _annualised_ratio(returns: pd.Series) -> float:
    values = returns.to_numpy()
    if len(values) < 2:
        return math.nan
    spread = float(np.std(values, ddof=1))
    if spread == 0 or values.max() == values.min():
        return math.nan
    return float(np.mean(values) / spread * math.sqrt(SESSIONS_PER_YEAR))


def _closed_pnl(trades: pd.DataFrame) -> pd.Series:
    return trades.loc[trades["closed"].astype(bool), "pnl"].astype(float)


def _same_sessions(equity: pd.Series, benchmark: pd.Series) -> None:
    if not equity.index.equals(benchmark.index):
        missing = equity.index.symmetric_difference(benchmark.index)
        detail = f"first difference {missing[0]}" if len(missing) else "same dates in another order"
        raise ValueError(f"benchmark must cover the same sessions as the strategy: {detail}")
