"""Peak memory and seconds of Task 2's training sequence, stage by stage, at a given universe size, without Dagster.

    python benchmarks/bench_training_memory.py --symbols 500 [--sessions 2520] [--cache /work/scale-cache]
                                               [--label after] [--out benchmarks/results/training_memory.json]

The samples frame is what the nightly feature assets build (SampleSource seed 7, planted_effect 0.1,
adjusted bars, `compute_features`, `make_labels`, `training_samples`); it is built once per size and
cached as Parquet under `--cache`, so later runs time training alone. The stages are those of the
`model_training` asset in order: read the samples Parquet (as the IO manager does), `train_ensemble`,
`publish_model` (into a temporary TURBOMODE_HOME), `ensemble_importance`, the drift baseline and the
metrics note of the asset's metadata.

Seconds are wall-clock and CPU (all threads; the fairer figure when other work shares the cores, and
the 1-minute load average before and after is recorded). Memory: before each stage the peak RSS is
reset (`5` into /proc/self/clear_refs), so each stage's VmHWM is its own peak; a sampler thread
(20 ms) also records the peak RSS inside `train_ensemble` per phase (preparing the features, the
base-learner fits, their predictions, the meta-learner, the out-of-fold frame, the metrics), found
by wrapping the functions it calls. `--stop-rss-gb` (default 16) aborts the run when RSS passes it:
the machine is shared. `--max-train-rows` / `--meta-max-rows` override the shipped caps (0: none).
Each run is merged into the JSON under `--label` (before, after, ...) and the size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from panels import adjusted_sample_market

from turbomode_dagster.config import load_settings
from turbomode_dagster.features import compute_features, make_labels, training_samples
from turbomode_dagster.models import ensemble
from turbomode_dagster.models.ensemble import ENSEMBLE, feature_columns, train_ensemble
from turbomode_dagster.models.explain import ensemble_importance
from turbomode_dagster.models.learners import DEFAULT_LEARNERS
from turbomode_dagster.models.metrics_note import balanced_accuracy_note
from turbomode_dagster.models.registry import publish_model
from turbomode_dagster.orchestration.assets.training import record_drift_baseline
from turbomode_dagster.storage.turbomode_db import TurboModeDB

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "training_memory.json"
DEFAULT_CACHE = Path("/work/scale-cache")
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "turbomode_dagster" / "scheduler_config.json"
PLANTED_EFFECT = 0.1
SAMPLE_EVERY_S = 0.02
GIB = 1024**3
# The functions train_ensemble calls (before and after the memory work), wrapped to name the phase the
# sampler thread charges RSS to; those a version lacks are skipped.
PHASES = (
    ("", "_prepared", "prepare"),
    ("TrainingData", "from_samples", "prepare"),
    ("", "_fit", "fit"),
    ("", "learner_proba", "predict"),
    ("MetaLearner", "fit", "meta_fit"),
    ("", "_oof_frame", "oof_frame"),
    ("", "metrics_table", "metrics"),
)
METRIC_KEYS = ("log_loss", "rank_ic", "rank_ic_se", "balanced_accuracy")


def status_kb(field: str) -> int:
    """A field of /proc/self/status (VmRSS, VmHWM) in kB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> None:
    """Reset VmHWM to the current RSS, so the next reading is the peak since now."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


class Sampler(threading.Thread):
    """Samples RSS every SAMPLE_EVERY_S, keeps the peak per phase label, and aborts past a limit."""

    def __init__(self, stop_kb: int) -> None:
        super().__init__(daemon=True)
        self.phase = "other"
        self.peaks: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.stop_kb = stop_kb
        self.running = True

    def run(self) -> None:
        while self.running:
            rss = status_kb("VmRSS")
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)
            if rss > self.stop_kb:
                peaks = {k: round(v / 2**20, 2) for k, v in self.peaks.items()}
                print(
                    f"RSS {rss / 2**20:.1f} GB passed the limit in phase {self.phase}: aborting; "
                    f"peak GB by phase {peaks}, seconds {self.seconds}",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(3)
            time.sleep(SAMPLE_EVERY_S)

    def wrap(self, module: Any, name: str, label: str) -> Callable[[], None]:
        """Replace module.name with a version that charges its time and RSS to `label`; return the undo."""
        original = getattr(module, name)

        def charged(*args: Any, **kwargs: Any) -> Any:
            outer, self.phase = self.phase, label
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
                self.cpu_seconds[label] = self.cpu_seconds.get(label, 0.0) + time.process_time() - cpu
                self.phase = outer

        setattr(module, name, charged)
        return lambda: setattr(module, name, original)


def samples_path(cache: Path, symbols: int, sessions: int) -> Path:
    """Where the samples frame of one size is cached."""
    return cache / f"samples_{symbols}x{sessions}_pe{PLANTED_EFFECT}.parquet"


def build_samples(path: Path, symbols: int, sessions: int) -> float:
    """Build the samples frame as the nightly feature assets do and write it to `path`; seconds taken."""
    start = time.perf_counter()
    bars, sectors, fundamentals = adjusted_sample_market(symbols, sessions, PLANTED_EFFECT)
    features = compute_features(bars, backend="pandas", sectors=sectors, fundamentals=fundamentals)
    samples = training_samples(features, make_labels(bars))
    path.parent.mkdir(parents=True, exist_ok=True)
    samples.to_parquet(path.with_suffix(".tmp"), index=False)
    path.with_suffix(".tmp").rename(path)
    return time.perf_counter() - start


def stage(report: dict, name: str, run: Callable[[], Any]) -> Any:
    """Run one stage with the peak RSS reset before it; record its seconds, peak and RSS after."""
    reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    value = run()
    report[name] = {
        "seconds": round(time.perf_counter() - start, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
        "peak_rss_gb": round(status_kb("VmHWM") / 2**20, 3),
        "rss_after_gb": round(status_kb("VmRSS") / 2**20, 3),
    }
    print(f"  {name}: {report[name]}", file=sys.stderr, flush=True)
    return value


def measure(symbols: int, sessions: int, cache: Path, stop_gb: float, caps: dict[str, int | None]) -> dict:
    """Every stage's seconds and peak RSS for one size, plus the out-of-sample metrics.

    `caps` overrides the shipped config's models.max_train_rows / models.meta_max_rows where given.
    """
    path = samples_path(cache, symbols, sessions)
    built = None if path.exists() else round(build_samples(path, symbols, sessions), 1)
    settings = load_settings(SHIPPED_CONFIG)
    settings = settings.model_copy(update={"models": settings.models.model_copy(update=caps)})
    report: dict[str, Any] = {
        "symbols": symbols,
        "sessions": sessions,
        "samples_build_seconds": built,
        "max_train_rows": settings.models.max_train_rows,
        "meta_max_rows": settings.models.meta_max_rows,
    }
    stages: dict[str, Any] = {}
    samples = stage(stages, "read_samples", lambda: pd.read_parquet(path))
    report["rows"], report["feature_columns"] = len(samples), len(feature_columns(samples))
    report["samples_gb"] = round(samples.memory_usage(deep=True).sum() / GIB, 3)
    sampler = Sampler(int(stop_gb * 2**20))
    owners = [
        (getattr(ensemble, owner) if owner else ensemble, name, label)
        for owner, name, label in PHASES
        if hasattr(ensemble, owner or name)
    ]
    undo = [sampler.wrap(owner, name, label) for owner, name, label in owners if hasattr(owner, name)]
    sampler.start()
    try:
        result = stage(
            stages,
            "train_ensemble",
            lambda: train_ensemble(
                samples,
                DEFAULT_LEARNERS,
                horizon=settings.labels.horizon,
                n_folds=settings.models.n_folds,
                seed=settings.models.seed,
                max_train_rows=settings.models.max_train_rows,
                meta_max_rows=settings.models.meta_max_rows,
            ),
        )
    finally:
        sampler.running = False
        for restore in undo:
            restore()
    stages["train_ensemble"]["phase_peak_rss_gb"] = {k: round(v / 2**20, 3) for k, v in sampler.peaks.items()}
    stages["train_ensemble"]["phase_seconds"] = {k: round(v, 2) for k, v in sampler.seconds.items()}
    stages["train_ensemble"]["phase_cpu_seconds"] = {k: round(v, 2) for k, v in sampler.cpu_seconds.items()}
    with tempfile.TemporaryDirectory(prefix="turbomode-trainmem-") as home:
        db = TurboModeDB.at_home(Path(home))
        record, _ = stage(stages, "publish_model", lambda: publish_model(Path(home), db, samples, result, "bench"))
        stage(
            stages,
            "ensemble_importance",
            lambda: ensemble_importance(
                result.ensemble.base_models,
                samples,
                max_rows=settings.models.shap_rows,
                seed=settings.models.seed,
                features=result.ensemble.feature_names,
            ),
        )
        stage(
            stages, "drift_baseline", lambda: record_drift_baseline(db, record.model_version, samples, result, settings)
        )
        stage(stages, "metrics_note", lambda: balanced_accuracy_note(result.metrics, result.oof))
    report["stages"] = stages
    report["total_seconds"] = round(sum(s["seconds"] for s in stages.values()), 1)
    report["total_cpu_seconds"] = round(sum(s["cpu_seconds"] for s in stages.values()), 1)
    report["peak_rss_gb"] = max(s["peak_rss_gb"] for s in stages.values())
    report["oof_rows"] = len(result.oof)
    report["oof_gb"] = round(result.oof.memory_usage(deep=True).sum() / GIB, 3)
    report["model_version"] = record.model_version
    report["ensemble_metrics"] = {k: round(float(result.metrics.loc[ENSEMBLE, k]), 5) for k in METRIC_KEYS}
    report["metrics"] = {
        model: {k: round(float(row[k]), 5) for k in METRIC_KEYS} for model, row in result.metrics.iterrows()
    }
    return report


def main(argv: list[str] | None = None) -> int:
    """Measure one size and merge it into the JSON under its label."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, required=True)
    parser.add_argument("--sessions", type=int, default=2520, help="sessions per symbol (2520 = 10 years)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the samples Parquet is cached")
    parser.add_argument("--label", default="after", help="the key this run is stored under (before, after, ...)")
    parser.add_argument("--stop-rss-gb", type=float, default=16.0, help="abort when RSS passes this")
    parser.add_argument("--max-train-rows", type=int, help="override models.max_train_rows (0: no cap)")
    parser.add_argument("--meta-max-rows", type=int, help="override models.meta_max_rows (0: no cap)")
    parser.add_argument("--build-only", action="store_true", help="build the cached samples frame and stop")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.build_only:
        path = samples_path(args.cache, args.symbols, args.sessions)
        print(f"built {path} in {build_samples(path, args.symbols, args.sessions):.1f} s")
        return 0
    given = {"max_train_rows": args.max_train_rows, "meta_max_rows": args.meta_max_rows}
    caps = {name: (value or None) for name, value in given.items() if value is not None}
    load_before = round(os.getloadavg()[0], 2)
    report = measure(args.symbols, args.sessions, args.cache, args.stop_rss_gb, caps)
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_1min_before_after": [load_before, round(os.getloadavg()[0], 2)],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}
    stored.setdefault(args.label, {})[str(args.symbols)] = report
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "metrics"}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
