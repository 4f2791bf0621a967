"""Time the backtest engine's `simulate` against vectorbt 1.0.0's `Portfolio.from_orders` on the same weights.

    python benchmarks/bench_backtest.py [--sizes 500,3000] [--sessions 2520] [--repeats 3]
                                        [--out benchmarks/results/backtest.json]

For each size (number of symbols over `--sessions` sessions, 2,520 = 10 years) the market is the
shared synthetic random walk (`panels.synthetic_market`: late listings, early delistings) and the
weights a persistent daily strategy: every session the top tenth of the listed symbols by a slowly
moving AR(1) score, equal weight summing to 1, 5 bps fees and 5 bps slippage, so buys run out of cash
every session and names enter and leave daily. Reported:

* ours: `simulate(prices, weights)` from the long frames to the result (pivoting, validation, the
  session loop, equity, orders, round trips);
* vectorbt: `Portfolio.from_orders` with the documented arguments on wide frames prepared beforehand
  (the pivot is not timed, which favours vectorbt), and the same plus `.value()` (the equity curve,
  which vectorbt computes lazily), and the ratio ours / vectorbt with `.value()`;
* agreement: the largest relative difference between the two equity curves, and the order counts.

Times are the best of `--repeats` runs after a warm-up run (which also pays numba's compilation).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import vectorbt as vbt
from bench_features import best_time
from panels import size_arguments, symbol_counts, synthetic_market

from turbomode_dagster.backtest import simulate

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "backtest.json"
FEES_BPS = 5.0
SLIPPAGE_BPS = 5.0
HELD_FRACTION = 0.1
SCORE_PERSISTENCE = 0.98


def strategy_weights(prices: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Equal weights on the top `HELD_FRACTION` of listed symbols by a persistent random score, every session."""
    close = prices.pivot(index="date", columns="symbol", values="close")
    rng = np.random.default_rng(seed)
    shocks = rng.normal(size=close.shape)
    score = np.empty(close.shape)
    score[0] = shocks[0]
    for i in range(1, len(score)):
        score[i] = SCORE_PERSISTENCE * score[i - 1] + np.sqrt(1 - SCORE_PERSISTENCE**2) * shocks[i]
    score[close.isna().to_numpy()] = -np.inf
    held = max(1, int(close.shape[1] * HELD_FRACTION))
    top = np.argsort(-score, axis=1, kind="stable")[:, :held]
    listed = np.take_along_axis(np.isfinite(score), top, axis=1)
    counts = listed.sum(axis=1, keepdims=True)
    rows = np.repeat(np.arange(len(score)), held).reshape(top.shape)
    return pd.DataFrame(
        {
            "symbol": close.columns.to_numpy()[top[listed]],
            "date": close.index.to_numpy()[rows[listed]],
            "weight": np.broadcast_to(1.0 / np.maximum(counts, 1), top.shape)[listed],
        }
    )


def vectorbt_inputs(prices: pd.DataFrame, weights: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The wide frames `from_orders` takes: close, open and the weights shifted to the session they trade."""
    close = prices.pivot(index="date", columns="symbol", values="close").sort_index()
    open_ = prices.pivot(index="date", columns="symbol", values="open").reindex_like(close)
    wide = weights.pivot(index="date", columns="symbol", values="weight").reindex(columns=close.columns).fillna(0.0)
    return {"close": close, "price": open_, "size": wide.reindex(close.index).shift(1)}


def from_orders(inputs: dict[str, pd.DataFrame]) -> vbt.Portfolio:
    return vbt.Portfolio.from_orders(
        inputs["close"],
        size=inputs["size"],
        size_type="targetpercent",
        price=inputs["price"],
        fees=FEES_BPS / 1e4,
        slippage=SLIPPAGE_BPS / 1e4,
        init_cash=1_000_000.0,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        direction="longonly",
    )


def measure(symbols: int, sessions: int, repeats: int) -> dict:
    bars, _, _ = synthetic_market(symbols, sessions)
    prices = bars[["symbol", "date", "open", "close"]]
    weights = strategy_weights(prices)
    inputs = vectorbt_inputs(prices, weights)

    def ours() -> object:
        return simulate(prices, weights, fees_bps=FEES_BPS, slippage_bps=SLIPPAGE_BPS)

    ours_seconds = best_time(ours, repeats)
    vbt_seconds = best_time(lambda: from_orders(inputs), repeats)
    vbt_value_seconds = best_time(lambda: from_orders(inputs).value(), repeats)
    result, pf = ours(), from_orders(inputs)
    theirs = pf.value().to_numpy()
    return {
        "symbols": symbols,
        "sessions": sessions,
        "price_rows": len(prices),
        "weight_rows": len(weights),
        "ours_seconds": round(ours_seconds, 3),
        "vectorbt_from_orders_seconds": round(vbt_seconds, 3),
        "vectorbt_with_value_seconds": round(vbt_value_seconds, 3),
        "ratio_ours_to_vectorbt": round(ours_seconds / vbt_value_seconds, 3),
        "orders_ours": len(result.orders),
        "orders_vectorbt": len(pf.orders.records),
        "equity_max_rel_diff": float(np.max(np.abs(result.equity.to_numpy() - theirs) / theirs)),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def table(results: list[dict]) -> str:
    lines = [
        "| symbols x sessions | orders | simulate (s) | vectorbt from_orders (s) | + .value() (s) | ours / vectorbt "
        "| equity max rel. diff |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['symbols']:,} x {r['sessions']:,} | {r['orders_ours']:,} | {r['ours_seconds']:.2f} "
            f"| {r['vectorbt_from_orders_seconds']:.2f} | {r['vectorbt_with_value_seconds']:.2f} "
            f"| {r['ratio_ours_to_vectorbt']:.2f} | {r['equity_max_rel_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sizes asked for, print the table, write the JSON."""
    parser = size_arguments(__doc__.splitlines()[0], DEFAULT_OUT)
    parser.set_defaults(sizes="500,3000")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure after a warm-up")
    args = parser.parse_args(argv)
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": {"numpy": np.__version__, "pandas": pd.__version__, "vectorbt": vbt.__version__},
        "costs_bps": {"fees": FEES_BPS, "slippage": SLIPPAGE_BPS},
        "results": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for size in symbol_counts(args.sizes):
        report["results"].append(measure(size, args.sessions, args.repeats))
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"done {size} symbols", file=sys.stderr, flush=True)
    print(table(report["results"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
