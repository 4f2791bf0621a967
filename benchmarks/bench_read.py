"""Time the Master DB's bulk reads through sqlite3 cursors and through the columnar path, same rows, same run.

    python benchmarks/bench_read.py [--sizes 83,500,3000] [--sessions 2520] [--repeats 3]
                                    [--cache DIR] [--out benchmarks/results/read.json]

For each size (symbols of the sample market over `--sessions` sessions, 2,520 = 10 years) it builds a
Master DB once with the ingestion writer (`MarketDBWriter`, 250 symbols a transaction) and caches it in
`--cache` (default: the system temp folder), then times two queries both ways:

* `bars`: the feature assets' read, the universe's bars as traded up to the last session
  (`MarketDataReader.bars(symbols, end)`);
* `closes`: the jump check's read of every stored close (`MarketDataReader.closes()`);

and, through the columnar path only, `load_history`: what each of the feature, backtest and drift assets
loads per night (bars, splits, dividends, sectors and fundamentals, then the adjustment).

The sqlite3 side is the path the project used before: `pandas.read_sql_query` over a `mode=ro` sqlite3
connection (Python tuples per row, then a frame). The columnar side is `MarketDataReader`: ADBC into
Arrow, then `to_pandas`; a further run times the two steps apart. Both sides must return equal frames, or
the run fails. Times are the best of `--repeats` after the file has been read once into the page cache.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
from panels import SAMPLE_SEED, SAMPLE_START, size_arguments, symbol_counts

from turbomode_dagster.features.history import MarketHistory, load_history
from turbomode_dagster.sources.sample import SampleSource
from turbomode_dagster.storage.columnar import ArrowReader
from turbomode_dagster.storage.market_db import SCHEMAS, MarketDataReader, MarketDBWriter
from turbomode_dagster.storage.sqlite import connect_read_only

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "read.json"
BUILD_CHUNK = 250


def universe(symbols: int) -> list[str]:
    """The sample symbols, named as `panels.sample_batch` names them."""
    return [f"S{i:04d}" for i in range(symbols)]


def build_db(path: Path, symbols: int, sessions: int) -> float:
    """Write the sample market into a new Master DB at `path` (atomically: built beside it, then renamed)."""
    partial = path.with_name(path.name + ".partial")
    for leftover in partial.parent.glob(partial.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    names, end = universe(symbols), SAMPLE_START + dt.timedelta(days=int(sessions * 365.25 / 252))
    source = SampleSource(seed=SAMPLE_SEED)
    writer = MarketDBWriter(partial)
    for first in range(0, symbols, BUILD_CHUNK):
        batch = source.fetch(names[first : first + BUILD_CHUNK], SAMPLE_START, end)
        with writer.transaction():
            for table, frame in [
                ("daily_bars", batch.bars),
                ("splits", batch.splits),
                ("dividends", batch.dividends),
                ("fundamentals", batch.fundamentals),
                ("symbol_metadata", batch.metadata),
            ]:
                writer.upsert(table, frame.assign(source="sample"), "source", "bench")
    writer.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.close()
    partial.rename(path)
    return time.perf_counter() - started


def cached_db(cache: Path, symbols: int, sessions: int) -> tuple[Path, float | None]:
    """The cached DB for this size, built if missing; the build's seconds, or None when it was cached."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"market_{symbols}x{sessions}.db"
    if path.exists():
        return path, None
    return path, build_db(path, symbols, sessions)


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, object]:
    """The fastest of `repeats` timed runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def sqlite3_frame(path: Path, sql: str, params: list[object]) -> pd.DataFrame:
    """The old bulk path: pandas.read_sql_query over a read-only sqlite3 connection."""
    con = connect_read_only(path)
    try:
        return pd.read_sql_query(sql, con, params=params)
    finally:
        con.close()


def columnar(path: Path, read: Callable[[MarketDataReader], pd.DataFrame]) -> pd.DataFrame:
    """The columnar path: one MarketDataReader, opened and closed around the read."""
    reader = MarketDataReader(path)
    try:
        return read(reader)
    finally:
        reader.close()


def arrow_then_pandas(path: Path, sql: str, params: list[object], schema_name: str) -> tuple[float, float]:
    """The columnar path's two steps timed apart in one run: ADBC into Arrow, then Arrow to pandas."""
    reader = ArrowReader(path)
    try:
        started = time.perf_counter()
        arrow = reader.table(sql, params, SCHEMAS[schema_name])
        converted = time.perf_counter()
        arrow.to_pandas()
        return converted - started, time.perf_counter() - converted
    finally:
        reader.close()


def queries(symbols: list[str], last_day: str) -> dict[str, tuple[str, list[object], Callable]]:
    """name -> (SQL the old path ran, its parameters, the same read through MarketDataReader)."""
    marks = ", ".join("?" * len(symbols))
    return {
        "bars": (
            "SELECT symbol, date, open, high, low, close, volume, source FROM daily_bars "
            f"WHERE symbol IN ({marks}) AND date <= ? ORDER BY symbol, date",
            [*symbols, last_day],
            lambda reader: reader.bars(symbols=symbols, end=last_day),
        ),
        "closes": (
            "SELECT symbol, date, close FROM daily_bars ORDER BY symbol, date",
            [],
            lambda reader: reader.closes(),
        ),
    }


def measure(path: Path, symbols: int, repeats: int) -> list[dict[str, object]]:
    """Both paths for each query on one DB; fails if their frames differ."""
    path.read_bytes()  # into the page cache, so neither side pays the first read from disk
    names = universe(symbols)
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as con:
        last_day = con.execute("SELECT MAX(date) FROM daily_bars").fetchone()[0]
    rows = []
    for name, (sql, params, read) in queries(names, last_day).items():
        old_s, old = best_of(repeats, partial(sqlite3_frame, path, sql, params))
        new_s, new = best_of(repeats, partial(columnar, path, read))
        arrow_s, pandas_s = min(
            (arrow_then_pandas(path, sql, params, name) for _ in range(repeats)), key=lambda split: sum(split)
        )
        pd.testing.assert_frame_equal(new, old, check_exact=True)
        rows.append(
            {
                "query": name,
                "symbols": symbols,
                "rows": len(new),
                "sqlite3_read_sql_seconds": round(old_s, 3),
                "columnar_seconds": round(new_s, 3),
                "columnar_arrow_seconds": round(arrow_s, 3),
                "columnar_to_pandas_seconds": round(pandas_s, 3),
                "speedup": round(old_s / new_s, 1),
                "frames_equal": True,
            }
        )
    history_s, history = best_of(repeats, partial(columnar, path, partial(history_of, names, last_day)))
    rows.append(
        {
            "query": "load_history",
            "symbols": symbols,
            "rows": len(history.bars),
            "columnar_seconds": round(history_s, 3),
        }
    )
    return rows


def history_of(symbols: list[str], last_day: str, reader: MarketDataReader) -> MarketHistory:
    """What each feature, backtest and drift asset loads: bars, splits, dividends, sectors, fundamentals, adjusted."""
    return load_history(reader, symbols, last_day)


def table(results: list[dict[str, object]]) -> str:
    """The results as the README's markdown table."""
    lines = [
        "| query | symbols x 10 y | rows | sqlite3 read_sql s | columnar s | of which Arrow + to_pandas | speedup |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["query"] == "load_history":
            continue
        lines.append(
            f"| `{r['query']}` | {r['symbols']:,} | {r['rows']:,} | {r['sqlite3_read_sql_seconds']:.2f} | "
            f"{r['columnar_seconds']:.2f} | {r['columnar_arrow_seconds']:.2f} + {r['columnar_to_pandas_seconds']:.2f} "
            f"| {r['speedup']:.1f}x |"
        )
    lines.append("")
    lines.append("| symbols x 10 y | load_history s (columnar read of five tables + adjustment) |")
    lines.append("|---|---|")
    lines.extend(f"| {r['symbols']:,} | {r['columnar_seconds']:.2f} |" for r in results if r["query"] == "load_history")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build or reuse each size's DB, time both paths, print the table, write the JSON."""
    parser = size_arguments(__doc__.splitlines()[0], DEFAULT_OUT)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure; the best is kept")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "turbomode_bench_read")
    args = parser.parse_args(argv)
    results, builds, load_before = [], {}, os.getloadavg()
    for size in symbol_counts(args.sizes):
        path, build_s = cached_db(args.cache, size, args.sessions)
        builds[size] = None if build_s is None else round(build_s, 1)
        print(
            f"{size} symbols: {path} ({'cached' if build_s is None else f'built in {build_s:.0f} s'})", file=sys.stderr
        )
        results.extend(measure(path, size, max(args.repeats, 1)))
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        # Other work on the machine slows both sides; the ratio is from one run, the seconds are not portable.
        "load_average_1_5_15_min": {"start": load_before, "end": os.getloadavg()},
        "source": "sample",
        "sessions": args.sessions,
        "repeats": args.repeats,
        "build_seconds": builds,  # None: the DB was cached by an earlier run
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
