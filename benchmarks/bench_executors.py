"""Time the nightly's first two tasks on each executor: what a step in its own process costs, and what it saves.

    python benchmarks/bench_executors.py [--executors in_process,multiprocess,dask] [--symbols 83]
                                         [--start 2016-01-04] [--workers 2] [--out benchmarks/results/executors.json]

Each executor gets a fresh TURBOMODE_HOME with the shipped config (the built-in sample source, the first
`--symbols` of the universe from `--start`, `compute.executor` set) and runs `run_ingestion` then
`run_orchestrator` for 2026-11-25 through `execute_attached`, as `turbomode run` does. Dask connects to a
`distributed.LocalCluster` of `--workers` worker processes started here. Per job it records the wall
seconds, each step's seconds (its STEP_START to STEP_SUCCESS in the event log, which on the other executors
includes loading the code location in the step's process) and the rest: the executor's own overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

DAY = "2026-11-25"
TASKS = ("run_ingestion", "run_orchestrator")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", default="in_process,multiprocess,dask")
    parser.add_argument("--symbols", type=int, default=83)
    parser.add_argument("--start", default="2016-01-04")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "executors.json")
    return parser.parse_args(argv)


def step_seconds(instance, run_id: str) -> dict[str, float]:
    """Each step's seconds from its start event to its success event, as the run's event log stored them."""
    starts, seconds = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.is_step_start:
            starts[event.step_key] = entry.timestamp
        elif event is not None and event.is_step_success:
            seconds[event.step_key] = round(entry.timestamp - starts[event.step_key], 2)
    return seconds


def run_executor(executor: str, args: argparse.Namespace, root: Path) -> dict[str, object]:
    """One executor's night in its own home: per job, wall seconds, step seconds and the rest."""
    import distributed

    from turbomode_dagster.config import SHIPPED_CONFIG, load_settings
    from turbomode_dagster.definitions import build_definitions
    from turbomode_dagster.orchestration.instance import open_instance, prepare_dagster_home
    from turbomode_dagster.orchestration.launch import execute_attached

    home, config = root / executor / "home", root / executor / "config.json"
    home.mkdir(parents=True)
    os.environ.update(TURBOMODE_HOME=str(home), TURBOMODE_CONFIG=str(config))
    os.environ.pop("DAGSTER_HOME", None)
    raw = json.loads(SHIPPED_CONFIG.read_text())
    raw["universe"]["symbols"] = raw["universe"]["symbols"][: args.symbols]
    raw["history"]["start_date"] = args.start
    raw["sources"]["order"] = ["sample"]
    raw.setdefault("compute", {})["executor"] = executor
    with ExitStack() as stack:
        if executor == "dask":
            cluster = stack.enter_context(
                distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
            )
            raw["compute"]["dask_scheduler"] = cluster.scheduler_address
        config.write_text(json.dumps(raw, indent=2))
        settings = load_settings(config)
        defs = build_definitions(settings)
        instance = stack.enter_context(open_instance(prepare_dagster_home(settings, home)))
        jobs = {}
        for name in TASKS:
            started = time.perf_counter()
            result = execute_attached(instance, defs.resolve_job_def(name), DAY)
            wall = round(time.perf_counter() - started, 2)
            if not result.success:
                raise SystemExit(f"{name} failed on {executor}")
            steps = step_seconds(instance, result.run_id)
            jobs[name] = {"wall_s": wall, "steps_s": steps, "outside_steps_s": round(wall - sum(steps.values()), 2)}
            print(f"{executor:>12} {name:<17} {wall:7.1f} s  steps {steps}", flush=True)
    return jobs


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench_executors_") as folder:
        for executor in args.executors.split(","):
            load_before = os.getloadavg()[0]
            results[executor] = {**run_executor(executor, args, Path(folder)), "load_1min_before": load_before}
    document = {
        "symbols": args.symbols,
        "start": args.start,
        "day": DAY,
        "dask_workers": args.workers,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "executors": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
