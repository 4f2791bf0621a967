"""Time the model stage on sample panels (training, SHAP, the overnight scan) and `turbomode nightly` end to end.

    python benchmarks/bench_models.py [--sizes 83,500,3000] [--sessions 2520] [--estimate 3000] [--nightly]
                                      [--out benchmarks/results/models.json]

For each size (number of symbols over `--sessions` sessions, 2,520 = 10 years) the panel is what the
nightly feature assets build: SampleSource (seed 7, planted_effect 0.1), split- and dividend-adjusted
bars, `compute_features` with sectors and fundamentals, `make_labels` and `training_samples`. Then:

* training: one `train_ensemble` run with the default eight base learners and the logistic meta-learner
  (4 walk-forward folds), seconds and training rows, with each learner's fit and predict seconds summed
  over the folds and the final fit (the rest: the meta-learner, row selection, metrics, out-of-fold frame);
* SHAP: `ensemble_importance` on 2,000 seeded training rows, first for every XGBoost learner (the
  nightly call), then for the tree learners `shap.TreeExplainer` also explains (all but gblinear),
  against `shap.TreeExplainer(model).shap_values` on the same rows and learners, as a ratio ours / shap.
  For XGBoost models shap itself calls XGBoost's C++ TreeSHAP (`pred_contribs`), so the values agree
  exactly and the ratio measures what each side adds around that call (shap parses the model and
  checks additivity); the largest absolute difference between the two is reported;
* scan: `scan_session` for the panel's last session over every symbol, with the shipped scanner settings.

SHAP and scan times are the best of 3 runs after a warm-up; training runs once. `--estimate` adds
sizes extrapolated from the measured ones instead of run (flagged `estimated`): seconds that grow with
the panel (market, features, training, scan) from a least-squares line in training rows, SHAP (fixed
rows, models whose size does not grow with the data) as the mean of the measured sizes.

`--nightly` runs the real command `turbomode nightly --date 2026-11-25 --sources sample` in a fresh
temporary TURBOMODE_HOME with DAGSTER_HOME (and TURBOMODE_CONFIG, TURBOMODE_SOURCES) unset, so the
shipped config applies: 83 symbols from history.start_date 2016-01-04. It records the per-task seconds
from the command's summary and the command's wall-clock seconds. The 1-minute load average is
recorded around every figure, and OMP_NUM_THREADS / OMP_WAIT_POLICY with the machine: XGBoost's
OpenMP threads slow down badly when other work shares the cores.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import shap
from bench_features import best_time
from panels import adjusted_sample_market, size_arguments, symbol_counts
from sklearn.base import ClassifierMixin

from turbomode_dagster import calendar
from turbomode_dagster.config import Scanner
from turbomode_dagster.features import compute_features, make_labels, training_samples
from turbomode_dagster.models import ensemble
from turbomode_dagster.models.ensemble import ENSEMBLE, feature_columns, train_ensemble
from turbomode_dagster.models.explain import SHAP_ROWS, contributions, ensemble_importance, supports_shap
from turbomode_dagster.models.learners import DEFAULT_LEARNERS, LearnerSpec
from turbomode_dagster.scanner import scan_session
from turbomode_dagster.sources import sample

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "models.json"
PLANTED_EFFECT = 0.1
N_FOLDS = 4
REPEATS = 3
NIGHTLY_DATE = "2026-11-25"
NIGHTLY_TARGET_SECONDS = 180.0
NIGHTLY_ENV_UNSET = ("DAGSTER_HOME", "TURBOMODE_CONFIG", "TURBOMODE_SOURCES")
SUMMARY_LINE = re.compile(r"^\s*Task (\d+) (\w+)\s+(ok|FAILED)\s+([\d.]+) s$", re.MULTILINE)
THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")
ROW_SCALED = ("market_seconds", "features_seconds", "train_seconds", "scan_seconds")
FIXED_COST = ("shap_all_xgboost_seconds", "shap_ours_seconds", "shap_tree_explainer_seconds")


def load() -> float:
    """The 1-minute load average (how busy the machine was)."""
    return round(os.getloadavg()[0], 2)


@contextmanager
def learner_clock() -> Iterator[dict[str, dict[str, float]]]:
    """Per-learner fit and predict seconds inside `train_ensemble`, by wrapping the two calls it makes."""
    fit, proba = ensemble.fit_learner, ensemble.learner_proba
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: {"fit": 0.0, "predict": 0.0})
    names: dict[int, str] = {}

    def timed_fit(spec: LearnerSpec, features: pd.DataFrame, labels: np.ndarray, seed: int) -> ClassifierMixin:
        start = time.perf_counter()
        model = fit(spec, features, labels, seed)
        seconds[spec.name]["fit"] += time.perf_counter() - start
        names[id(model)] = spec.name
        return model

    def timed_proba(model: ClassifierMixin, features: pd.DataFrame) -> np.ndarray:
        start = time.perf_counter()
        out = proba(model, features)
        seconds[names[id(model)]]["predict"] += time.perf_counter() - start
        return out

    ensemble.fit_learner, ensemble.learner_proba = timed_fit, timed_proba
    try:
        yield seconds
    finally:
        ensemble.fit_learner, ensemble.learner_proba = fit, proba


def tree_explainable(model: object) -> bool:
    """Whether shap.TreeExplainer handles the learner: an XGBoost tree booster (not gblinear)."""
    return supports_shap(model) and model.get_params().get("booster") != "gblinear"


def tree_explainer_values(models: dict[str, object], rows: pd.DataFrame) -> list[np.ndarray]:
    """shap.TreeExplainer(model).shap_values(rows) for each model: n x features x classes."""
    return [shap.TreeExplainer(model).shap_values(rows) for model in models.values()]


def measure(symbols: int, sessions: int) -> dict:
    """Every figure for one panel size."""
    load_before = load()
    sample._path.cache_clear()  # simulate every symbol afresh: a smaller size run before must not warm this one
    start = time.perf_counter()
    bars, sectors, fundamentals = adjusted_sample_market(symbols, sessions, PLANTED_EFFECT)
    market_seconds = time.perf_counter() - start
    start = time.perf_counter()
    features = compute_features(bars, backend="pandas", sectors=sectors, fundamentals=fundamentals)
    samples = training_samples(features, make_labels(bars))
    features_seconds = time.perf_counter() - start
    del bars
    print(f"  {symbols} symbols: {len(samples)} training rows, training ...", file=sys.stderr, flush=True)

    with learner_clock() as per_learner:
        start = time.perf_counter()
        result = train_ensemble(samples, DEFAULT_LEARNERS, n_folds=N_FOLDS)
        train_seconds = time.perf_counter() - start
    models = result.ensemble.base_models

    inputs = samples[feature_columns(samples)]
    rows = inputs.iloc[np.sort(np.random.default_rng(0).choice(len(inputs), SHAP_ROWS, replace=False))]
    comparable = {name: model for name, model in models.items() if tree_explainable(model)}
    shap_all = best_time(lambda: ensemble_importance(models, rows), REPEATS)
    shap_ours = best_time(lambda: ensemble_importance(comparable, rows), REPEATS)
    shap_theirs = best_time(lambda: tree_explainer_values(comparable, rows), REPEATS)
    difference = max(
        float(np.abs(np.moveaxis(theirs, 2, 1) - contributions(model, rows)[:, :, :-1]).max())
        for model, theirs in zip(comparable.values(), tree_explainer_values(comparable, rows), strict=True)
    )

    as_of = features["date"].max().date().isoformat()
    universe = sorted(features["symbol"].unique())
    scanner = Scanner()

    def scan() -> object:
        return scan_session(
            features,
            universe,
            result.ensemble,
            "benchmark",
            as_of,
            calendar.next_session(as_of),
            scanner.min_probability,
            scanner.top_features,
        )

    scan_seconds = best_time(scan, REPEATS)
    return {
        "symbols": symbols,
        "sessions": sessions,
        "estimated": False,
        "rows": len(samples),
        "feature_columns": len(feature_columns(samples)),
        "market_seconds": round(market_seconds, 2),
        "features_seconds": round(features_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "train_per_learner_seconds": {
            name: {k: round(v, 2) for k, v in parts.items()} for name, parts in per_learner.items()
        },
        "train_other_seconds": round(train_seconds - sum(sum(p.values()) for p in per_learner.values()), 2),
        "ensemble_log_loss": round(float(result.metrics.loc[ENSEMBLE, "log_loss"]), 4),
        "shap_rows": len(rows),
        "shap_all_xgboost_learners": [name for name, model in models.items() if supports_shap(model)],
        "shap_all_xgboost_seconds": round(shap_all, 3),
        "shap_compared_learners": list(comparable),
        "shap_ours_seconds": round(shap_ours, 3),
        "shap_tree_explainer_seconds": round(shap_theirs, 3),
        "shap_ratio_vs_tree_explainer": round(shap_ours / shap_theirs, 2),
        "shap_max_abs_difference": difference,
        "scan_as_of": as_of,
        "scan_symbols": len(universe),
        "scan_seconds": round(scan_seconds, 3),
        "load_average_1min": [load_before, load()],
    }


def estimate(symbols: int, measured: list[dict]) -> dict:
    """A size extrapolated from the measured ones (at least two, same sessions) instead of run."""
    rows = np.array([r["rows"] for r in measured], dtype=float)
    largest = max(measured, key=lambda r: r["symbols"])
    target_rows = round(largest["rows"] / largest["symbols"] * symbols)
    figures = {}
    for key in ROW_SCALED:
        slope, intercept = np.polyfit(rows, [r[key] for r in measured], 1)
        figures[key] = round(float(intercept + slope * target_rows), 1)
    for key in FIXED_COST:
        figures[key] = round(float(np.mean([r[key] for r in measured])), 3)
    return {
        "symbols": symbols,
        "sessions": largest["sessions"],
        "estimated": True,
        "estimate_method": f"least-squares line in training rows through the measured sizes "
        f"{[r['symbols'] for r in measured]} for {', '.join(ROW_SCALED)}; mean of the measured sizes for "
        f"{', '.join(FIXED_COST)}; rows scaled from {largest['symbols']} symbols",
        "rows": target_rows,
        **figures,
        "shap_ratio_vs_tree_explainer": round(figures["shap_ours_seconds"] / figures["shap_tree_explainer_seconds"], 2),
    }


def nightly(date: str) -> dict:
    """Run `turbomode nightly` for `date` from the sample source in a fresh home; per-task and wall seconds."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    command = [shutil.which("turbomode", path=search) or "turbomode", "nightly", "--date", date, "--sources", "sample"]
    load_before = load()
    with tempfile.TemporaryDirectory(prefix="turbomode-bench-") as home:
        env = {k: v for k, v in os.environ.items() if k not in NIGHTLY_ENV_UNSET}
        env["TURBOMODE_HOME"] = home
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    tasks = [
        {"task_id": int(m[1]), "function": m[2], "status": m[3], "seconds": float(m[4])}
        for m in SUMMARY_LINE.finditer(done.stdout)
    ]
    tasks_total = sum(t["seconds"] for t in tasks)
    report = {
        "command": " ".join(["turbomode", *command[1:]]),
        "returncode": done.returncode,
        "tasks": tasks,
        "tasks_seconds": round(tasks_total, 1),
        "wall_seconds": round(wall, 1),
        "target_seconds": NIGHTLY_TARGET_SECONDS,
        "meets_target": done.returncode == 0 and wall < NIGHTLY_TARGET_SECONDS,
        "load_average_1min": [load_before, load()],
    }
    if done.returncode:
        report["stderr_tail"] = done.stderr[-2000:]
    return report


def table(results: list[dict]) -> str:
    """The per-size results as a fixed-width text table (estimated sizes marked `~`)."""
    head = (
        f"{'symbols':>8} {'rows':>9} {'panel s':>8} {'train s':>8} {'shap s':>7} "
        f"{'ours s':>7} {'shap.TE s':>9} {'ratio':>6} {'scan s':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        mark = "~" if r["estimated"] else ""
        lines.append(
            f"{mark + str(r['symbols']):>8} {r['rows']:>9} {r['market_seconds'] + r['features_seconds']:>8.1f} "
            f"{r['train_seconds']:>8.1f} {r['shap_all_xgboost_seconds']:>7.2f} {r['shap_ours_seconds']:>7.2f} "
            f"{r['shap_tree_explainer_seconds']:>9.2f} {r['shap_ratio_vs_tree_explainer']:>6.2f} "
            f"{r['scan_seconds']:>7.2f}"
        )
    return "\n".join(lines)


def nightly_table(run: dict) -> str:
    """The nightly run's per-task seconds and totals as text."""
    lines = [f"{run['command']}: exit {run['returncode']}"]
    lines += [f"  Task {t['task_id']} {t['function']:<24} {t['status']:<7} {t['seconds']:7.1f} s" for t in run["tasks"]]
    lines.append(
        f"  tasks {run['tasks_seconds']:.1f} s, wall {run['wall_seconds']:.1f} s "
        f"(target < {run['target_seconds']:.0f} s)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sizes asked for (and the estimates, the nightly), print the tables, write the JSON."""
    parser = size_arguments(__doc__.splitlines()[0], DEFAULT_OUT)
    parser.add_argument("--estimate", default="", help="comma-separated symbol counts to extrapolate, not run")
    parser.add_argument("--nightly", action="store_true", help=f"also time `turbomode nightly --date {NIGHTLY_DATE}`")
    args = parser.parse_args(argv)
    sizes = symbol_counts(args.sizes)
    estimates = symbol_counts(args.estimate)
    if estimates and len(sizes) < 2:
        parser.error("--estimate needs at least two measured --sizes")
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "env": {name: os.environ.get(name) for name in THREAD_ENV},
        },
        "source": {"name": "sample", "planted_effect": PLANTED_EFFECT, "n_folds": N_FOLDS},
        "results": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for size in sizes:
        report["results"].append(measure(size, args.sessions))
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"done {size} symbols", file=sys.stderr, flush=True)
    report["results"] += [estimate(size, report["results"]) for size in estimates]
    if args.nightly:
        report["nightly"] = nightly(NIGHTLY_DATE)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    if report["results"]:
        print(table(report["results"]))
    if args.nightly:
        print(nightly_table(report["nightly"]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
