"""Run the feature engine on pandas and on cuDF over the same panel; assert equal values, print both times.

    python benchmarks/gpu_check.py [--symbols 3000] [--sessions 2520] [--rtol 1e-9] [--source synthetic]

On a machine where cuDF imports and a CUDA GPU is visible, it computes every feature on both backends
from one panel (3,000 symbols x 10 years by default), checks each feature column agrees to `--rtol`
relative (NaN where the other is NaN; errors relative to max(|value|, 1) so values near zero compare
absolutely; the engine stores ratio features as float32, and there one float32 ulp is allowed, since a
last-bit difference in float64 can round either way) and prints the
seconds of each backend, best of `--repeats` after a warm-up. Exit 0 when equal, 1 when any column
differs (the worst columns are printed). Without a GPU it says why and exits 0, so CI can call it.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
from panels import sample_market, synthetic_market

from turbomode_dagster.features import FEATURE_COLUMNS, compute_features
from turbomode_dagster.features.backend import BackendUnavailable, resolve_backend


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        resolve_backend("cudf")
    except BackendUnavailable as exc:
        print(f"gpu_check: skipped, no GPU path on this machine: {exc}")
        return 0
    make = synthetic_market if args.source == "synthetic" else sample_market
    bars, sectors, fundamentals = make(args.symbols, args.sessions)
    print(f"gpu_check: {bars['symbol'].nunique()} symbols, {len(bars):,} bars, {len(FEATURE_COLUMNS)} features")
    timed = {backend: _best_time(bars, sectors, fundamentals, backend, args.repeats) for backend in ("pandas", "cudf")}
    (cpu, cpu_s), (gpu, gpu_s) = timed["pandas"], timed["cudf"]
    print(
        f"pandas {cpu_s:.2f} s, cuDF {gpu_s:.2f} s, speed-up x{cpu_s / gpu_s:.1f} ({gpu.attrs.get('backend_reason')})"
    )
    worst = column_differences(cpu, gpu, args.rtol)
    if worst.empty:
        print(f"equal: every feature agrees to {args.rtol:g} relative")
        return 0
    print(f"DIFFERENT: {len(worst)} feature(s) beyond {args.rtol:g} relative:")
    print(worst.head(20).to_string())
    return 1


def column_differences(cpu: pd.DataFrame, gpu: pd.DataFrame, rtol: float) -> pd.DataFrame:
    """Per feature column that disagrees: rows differing, the worst relative error, NaN mismatches."""
    if not cpu[["symbol", "date"]].equals(gpu[["symbol", "date"]]):
        raise AssertionError("the backends return different (symbol, date) rows")
    rows = []
    for column in FEATURE_COLUMNS:
        a, b = cpu[column].to_numpy(np.float64), gpu[column].to_numpy(np.float64)
        tolerance = max(rtol, float(np.finfo(cpu[column].dtype).eps))
        nan_mismatch = int((np.isnan(a) != np.isnan(b)).sum())
        both = ~np.isnan(a) & ~np.isnan(b)
        error = np.abs(a[both] - b[both]) / np.maximum(np.abs(a[both]), 1.0)
        beyond = int((error > tolerance).sum())
        if beyond or nan_mismatch:
            rows.append({"feature": column, "rows_beyond": beyond, "nan_mismatch": nan_mismatch,
                         "worst_relative": float(error.max(initial=0.0))})  # fmt: skip
    return pd.DataFrame(rows, columns=["feature", "rows_beyond", "nan_mismatch", "worst_relative"])


def _best_time(bars, sectors, fundamentals, backend: str, repeats: int) -> tuple[pd.DataFrame, float]:
    """The features and the best of `repeats` timed runs after one warm-up run."""
    result = compute_features(bars, backend, sectors, fundamentals)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = compute_features(bars, backend, sectors, fundamentals)
        best = min(best, time.perf_counter() - started)
    return result, best


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument("--sessions", type=int, default=2520)
    parser.add_argument("--rtol", type=float, default=1e-9)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--source", choices=("synthetic", "sample"), default="synthetic")
    return parser


if __name__ == "__main__":
    sys.exit(main())
