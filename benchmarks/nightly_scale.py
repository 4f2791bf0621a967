"""Run `turbomode nightly` on the sample market at N symbols and measure each task: wall time, peak memory,
bytes written.

    python benchmarks/nightly_scale.py --symbols 500 [--years 10] [--date D] [--nights K]
                                       [--home DIR] [--keep-home] [--out benchmarks/results/nightly_500.json]

It writes the shipped config with N symbols (the shipped 83 first, then S0000, S0001, ...), history from
`--years` before the first night and the sample source, then runs `turbomode nightly --date` as a
subprocess for K consecutive sessions (the first on a fresh home loads the whole history; the second on
is the steady state), with TURBOMODE_HOME and DAGSTER_HOME in `--home` (default: a temporary folder,
removed at the end unless `--keep-home`). Per night and per task it records wall time (the nightly's
own and Dagster's run record), peak RSS (sampled every 0.5 s over the process tree, and the kernel's
high-water mark for the whole night), bytes added under TURBOMODE_HOME by folder, and disk writes;
then writes the JSON document and prints markdown tables for the README.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from nightly_runner import (
    RESULTS,
    BenchHome,
    NightMeasure,
    TaskMeasure,
    add_night_arguments,
    gb,
    history_start,
    machine,
    markdown_table,
    max_rss_bytes,
    mb,
    night_sessions,
    run_nights,
    universe,
    write_config,
    write_results,
)


def rss_rise(task: TaskMeasure) -> int:
    """How far a task raised the tree's RSS above what it held when the task started: its own appetite, since
    the process keeps what earlier tasks took."""
    return max(task.peak_rss_bytes - task.rss_start_bytes, 0)


def summary_table(symbols: int, years: float, nights: list[NightMeasure]) -> str:
    """One row per night: seconds per task, outside them (Python's start, loading the code location, the
    report) and for the night; peak RSS, and the task whose run raised it most; bytes."""
    task_ids = sorted({task.task_id for night in nights for task in night.tasks})
    header = [
        "symbols x years", "night", "session", *(f"Task {i} s" for i in task_ids), "other s", "night s",
        "peak RSS GB", "largest rise GB (task)", "home + MB", "disk writes MB", "load avg",
    ]  # fmt: skip
    rows = []
    for number, night in enumerate(nights, start=1):
        by_id = {task.task_id: task for task in night.tasks}
        seconds = [f"{by_id[i].wall_s:.1f}" if i in by_id and by_id[i].wall_s is not None else "-" for i in task_ids]
        hungriest = max(night.tasks, key=rss_rise, default=None)
        rise = "-" if hungriest is None else f"{gb(rss_rise(hungriest))} (Task {hungriest.task_id})"
        rows.append(
            [
                f"{symbols:,} x {years:g}",
                str(number) + ("" if night.exit_code == 0 else " FAILED"),
                night.session,
                *seconds,
                f"{night.wall_s - sum(task.wall_s or 0.0 for task in night.tasks):.1f}",
                f"{night.wall_s:.1f}",
                gb(night.peak_tree_rss_bytes),
                rise,
                mb(sum(night.bytes_added.values())),
                mb(night.disk_write_bytes),
                f"{night.load_average_before[0]:.1f}-{night.load_average_after[0]:.1f}",
            ]
        )
    return markdown_table(header, rows)


def task_table(nights: list[NightMeasure]) -> str:
    """One row per task of each night: the nightly's seconds, Dagster's, RSS at its start and its peak (the
    process keeps what earlier tasks took, so the rise is the task's own), home growth, disk writes."""
    header = ["night", "task", "s", "Dagster run s", "RSS at start MB", "peak RSS MB", "home + MB", "disk writes MB"]
    rows = [
        [
            f"{number} ({night.session})",
            f"{task.task_id} {task.function}",
            "-" if task.wall_s is None else f"{task.wall_s:.1f}",
            "-" if task.run_s is None else f"{task.run_s:.1f}",
            mb(task.rss_start_bytes),
            mb(task.peak_rss_bytes),
            mb(sum(task.bytes_added.values())),
            mb(task.disk_write_bytes),
        ]
        for number, night in enumerate(nights, start=1)
        for task in night.tasks
    ]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, required=True, help="universe size (83 = the shipped universe)")
    parser.add_argument("--years", type=float, default=10.0, help="years of history before the first night")
    parser.add_argument("--nights", type=int, default=1, help="consecutive sessions to run (2nd on: steady state)")
    add_night_arguments(parser)
    parser.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results/nightly_<N>.json)")
    args = parser.parse_args(argv)
    try:
        symbols = universe(args.symbols)
        sessions = night_sessions(args.date, args.nights, dt.datetime.now(dt.timezone.utc))
        start = history_start(sessions[0], args.years)
    except ValueError as exc:
        parser.error(str(exc))
    out = args.out or RESULTS / f"nightly_{args.symbols}.json"
    with BenchHome(args.home, keep=args.keep_home) as bench:
        patches = {"universe.symbols": symbols, "history.start_date": start, "sources.order": ["sample"]}
        write_config(bench.config, patches)
        fresh = bench.fresh
        nights = list(run_nights(sessions, bench.home, bench.config, max_rss_bytes(args)))
    document = {
        "benchmark": "nightly_scale",
        "symbols": args.symbols,
        "years": args.years,
        "history_start": start,
        "universe": {"count": len(symbols), "first": symbols[0], "last": symbols[-1]},
        "fresh_home": fresh,
        "machine": machine(),
        "nights": [night.as_json() for night in nights],
    }
    write_results(out, document)
    print()
    print(summary_table(args.symbols, args.years, nights))
    print()
    print(task_table(nights))
    return 0 if len(nights) == len(sessions) and all(n.exit_code == 0 for n in nights) else 1


if __name__ == "__main__":
    raise SystemExit(main())
