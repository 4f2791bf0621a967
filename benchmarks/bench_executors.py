"""Time the nightly's first two tasks on each executor: what a step in its own process costs, and what it saves.

    python benchmarks/bench_executors.py [--executors in_process,multiprocess,dask,multiprocess+steps,dask+steps]
                                         [--symbols 83] [--start 2016-01-04] [--workers 2]
                                         [--out benchmarks/results/executors.json]

Each executor gets a fresh TURBOMODE_HOME with the shipped config (the built-in sample source, the first
`--symbols` of the universe from `--start`, `compute.executor` set; `+steps` after an executor's name also
sets `models.learner_steps`, one step per base learner plus the stacking step) and runs `turbomode run 1` then
`turbomode run 2` for 2026-11-25, each as its own command (its wall seconds include starting Python). Dask connects to a
`distributed.LocalCluster` of `--workers` worker processes started here. Per job it records the wall
seconds, each step's seconds (its STEP_START to STEP_SUCCESS in the event log, which on the other executors
includes loading the code location in the step's process), the span from the first step's start to the last
step's end, and the rest (wall minus span): starting the command, loading the code location, and the
executor's own overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

DAY = "2026-11-25"
TASKS = {"1": "run_ingestion", "2": "run_orchestrator"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", default="in_process,multiprocess,dask,multiprocess+steps,dask+steps")
    parser.add_argument("--symbols", type=int, default=83)
    parser.add_argument("--start", default="2016-01-04")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "executors.json")
    return parser.parse_args(argv)


def step_seconds(instance, run_id: str) -> tuple[dict[str, float], float]:
    """Each step's seconds from its start event to its success event, as the run's event log stored them,
    and the span from the first step's start to the last step's end (steps side by side overlap in it)."""
    starts, seconds, ends = {}, {}, []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.is_step_start:
            starts[event.step_key] = entry.timestamp
        elif event is not None and event.is_step_success:
            seconds[event.step_key] = round(entry.timestamp - starts[event.step_key], 2)
            ends.append(entry.timestamp)
    return seconds, round(max(ends) - min(starts.values()), 2) if ends else 0.0


def run_executor(entry: str, args: argparse.Namespace, root: Path) -> dict[str, object]:
    """One executor's night in its own home, each task as its own `turbomode run`: wall, step and other seconds.

    `entry` is an executor's name, with `+steps` for training as one step per base learner."""
    import dagster as dg
    import distributed

    from turbomode_dagster.config import SHIPPED_CONFIG

    executor, _, variant = entry.partition("+")
    home, config = root / entry / "home", root / entry / "config.json"
    home.mkdir(parents=True)
    raw = json.loads(SHIPPED_CONFIG.read_text())
    raw["universe"]["symbols"] = raw["universe"]["symbols"][: args.symbols]
    raw["history"]["start_date"] = args.start
    raw["sources"]["order"] = ["sample"]
    raw.setdefault("compute", {})["executor"] = executor
    raw["models"]["learner_steps"] = variant == "steps"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURBOMODE_", "DAGSTER_"))}
    env.update(TURBOMODE_HOME=str(home), TURBOMODE_CONFIG=str(config))
    jobs = {}
    with ExitStack() as stack:
        if executor == "dask":  # workers start with the night's environment, as production workers have it
            saved = dict(os.environ)
            os.environ.update(TURBOMODE_HOME=str(home), TURBOMODE_CONFIG=str(config))
            cluster = stack.enter_context(
                distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
            )
            os.environ.clear()
            os.environ.update(saved)
            raw["compute"]["dask_scheduler"] = cluster.scheduler_address
        config.write_text(json.dumps(raw, indent=2))
        for task, name in TASKS.items():
            started = time.perf_counter()
            command = [sys.executable, "-m", "turbomode_dagster.cli", "run", task, "--date", DAY]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            wall = round(time.perf_counter() - started, 2)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed on {entry}:\n{done.stdout}\n{done.stderr}")
            with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
                (run,) = instance.get_runs(dg.RunsFilter(job_name=name))
                steps, span = step_seconds(instance, run.run_id)
            outside = round(wall - span, 2)
            jobs[name] = {"wall_s": wall, "steps_s": steps, "steps_span_s": span, "outside_steps_s": outside}
            print(f"{entry:>18} {name:<17} {wall:7.1f} s  steps {steps}", flush=True)
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
