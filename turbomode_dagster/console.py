"""What the `turbomode` command prints: each task's line, the night's summary, signals, backtest and drift."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from turbomode_dagster.config import Settings, TaskId, assets_root


@dataclass(frozen=True)
class NightlyStep:
    """One task of the night, run as its Dagster job on the night's session partition."""

    task: TaskId
    results: str


NIGHTLY_STEPS = (
    NightlyStep(
        TaskId.INGESTION,
        "Master Market Data DB: {home}/market_data.db; adjusted prices, features, samples: {home}/datasets/",
    ),
    NightlyStep(TaskId.ORCHESTRATOR, "OOF predictions: {assets}/; models: {home}/models/"),
    NightlyStep(TaskId.OVERNIGHT_SCANNER, "model registry, SHAP logs, predictions, signals: {home}/turbomode.db"),
    NightlyStep(TaskId.BACKTEST_GENERATOR, "backtest runs, results, equity curves, trades: {home}/turbomode.db"),
    NightlyStep(TaskId.DRIFT_MONITOR, "drift log and retraining flags: {home}/turbomode.db"),
)


SUMMARY_KEYS = (
    "rows", "backend", "class_balance", "model_version", "status", "signals",
    "net_sharpe", "chance_percentile", "features_alerting", "flag_raised",
)  # fmt: skip


def describe_run(result) -> str:
    """A one-line account of what the run materialised, from its metadata (once per asset: a range run
    records each asset for every session of its range, with the same metadata)."""
    parts = []
    latest = {e.asset_key: e.event_specific_data.materialization for e in result.get_asset_materialization_events()}
    for materialization in latest.values():
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        if "rows_by_source" in metadata:
            failed = metadata.get("symbols_failed") or {}
            parts.append(
                f"bars by source {metadata['rows_by_source']}, range {metadata.get('date_range')}, "
                f"quarantined {metadata.get('quarantined_rows', 0)}, failed symbols: {', '.join(failed) or 'none'}"
            )
            continue
        shown = {k: metadata[k] for k in SUMMARY_KEYS if k in metadata}
        if shown:
            parts.append(f"{materialization.asset_key.to_user_string()} {shown}")
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    if checks:
        parts.append("checks " + ", ".join(f"{c.check_name} {'ok' if c.passed else 'FAILED'}" for c in checks))
    return "; ".join(parts) or "no assets materialised"


def print_numbers(result, task_id: int) -> None:
    """The task's own numbers from the run's materialisations (the seed's `results`)."""
    from turbomode_dagster.orchestration.metadata import metadata_by_asset
    from turbomode_dagster.task_results import task_numbers

    events = result.get_asset_materialization_events()
    numbers = task_numbers(task_id, metadata_by_asset(e.event_specific_data.materialization for e in events))
    print(f"Results: {', '.join(f'{k} {v}' for k, v in numbers.items()) or 'none recorded'}")


def print_failure(result) -> None:
    """The root cause of each failed step, without Dagster's wrapping and stack."""
    from turbomode_dagster.orchestration.failures import root_cause

    for event in result.all_events:
        if event.is_step_failure:
            print(f"      step {event.step_key} failed: {root_cause(event.event_specific_data.error)}", file=sys.stderr)


def print_summary(cfg: Settings, day: str, home: Path, outcomes: list) -> None:
    print(f"\nSummary for {day}:")
    for task, ok, seconds in outcomes:
        print(f"  Task {task.task_id} {task.function_name:<24} {'ok' if ok else 'FAILED':<7} {seconds:6.1f} s")
    for step in NIGHTLY_STEPS[len(outcomes) :]:
        print(f"  Task {step.task.value} {step.task.function_name:<24} not run")
    print("Results:")
    for step in NIGHTLY_STEPS[: len(outcomes)]:
        print(f"  {step.results.format(home=home, assets=assets_root(home))}")


def print_signals(home: Path, day: str) -> None:
    """The night's signals, strongest first: what a trader acts on at the next open."""
    import json

    from turbomode_dagster.storage.turbomode_db import TurboModeDB

    signals = TurboModeDB.at_home(home).read_table("signals", as_of_date=day)
    if signals.empty:
        print(f"\nNo signals for {day}.")
        return
    target = signals["target_date"].iloc[0]
    order = {"BUY": 0, "SELL": 1, "HOLD": 2}
    signals = signals.assign(rank=signals["signal"].map(order)).sort_values(
        ["rank", "confidence"], ascending=[True, False]
    )
    counts = signals["signal"].value_counts().to_dict()
    print(f"\nSignals for {target} (as of {day}, model {signals['model_version'].iloc[0]}): {counts}")
    print(f"  {'symbol':<7} {'signal':<6} {'conf':>5}  top features (SHAP toward the signal)")
    for row in signals.itertuples(index=False):
        features = ", ".join(f"{f['feature']} {f['contribution']:+.2f}" for f in json.loads(row.top_features)[:3])
        print(f"  {row.symbol:<7} {row.signal:<6} {row.confidence:5.2f}  {features}")


def print_backtest(home: Path, day: str) -> None:
    """One line: the strategy's net CAGR, Sharpe and max drawdown beside the benchmark's, and chance."""
    import json

    from turbomode_dagster.backtest.report import ENSEMBLE
    from turbomode_dagster.storage.turbomode_db import TurboModeDB

    db = TurboModeDB.at_home(home)
    runs = db.read_backtest("backtest_runs", day).set_index("strategy")
    results = db.read_backtest("backtest_results", day)
    net = results[(results["scope"] == "total") & (results["basis"] == "net")]
    value = net.set_index(["run_id", "metric"])["value"]
    parameters = json.loads(runs.loc[ENSEMBLE, "parameters"])
    benchmark = parameters["benchmark"]

    def figures(strategy: str) -> str:
        run = runs.loc[strategy, "run_id"]
        return (
            f"{strategy} net CAGR {value[run, 'cagr']:+.1%}, Sharpe {value[run, 'sharpe']:.2f}, "
            f"max drawdown {value[run, 'max_drawdown']:.1%}"
        )

    ensemble = runs.loc[ENSEMBLE, "run_id"]
    print(
        f"\nBacktest {runs.loc[ENSEMBLE, 'period']} (out of fold): {figures(ENSEMBLE)}; {figures(benchmark)}; "
        f"chance percentile {value[ensemble, 'chance_percentile']:.0f} among {parameters['chance_seeds']} "
        f"permuted-signal strategies (their mean Sharpe {value[ensemble, 'chance_sharpe_mean']:.2f})"
    )


def print_drift(home: Path, day: str) -> None:
    """One line: how many features are on alert against the champion's baseline, and the flag."""
    from turbomode_dagster.storage.turbomode_db import TurboModeDB

    db = TurboModeDB.at_home(home)
    rows = db.read_table("drift_monitoring", as_of_date=day)
    flags = db.read_table("retrain_flags", as_of_date=day)
    features = rows[rows["kind"] == "feature"]
    alerting = features.loc[features["status"] == "alert", "feature"].tolist()
    verdict = (
        f"retraining flag raised ({flags['flag_id'].iloc[0]}, {flags['status'].iloc[0]}): {flags['reason'].iloc[0]}"
        if len(flags)
        else "no retraining flag"
    )
    print(
        f"\nDrift {day} against {rows['model_version'].iloc[0]}: {len(alerting)} of {len(features)} monitored features "
        f"on alert{' (' + ', '.join(alerting) + ')' if alerting else ''}; {verdict}"
    )


def print_status(document: dict, timezone: str) -> None:
    """The status document as a table: one line per task, then the errors."""
    daemon = "running" if document["running"] else "NOT running (start it with `dagster dev` or `dagster-daemon run`)"
    print(f"TurboMode scheduler: daemon {daemon}; config version {document['version']}; times in {timezone}")
    print(f"  {'task':<4} {'function':<24} {'enabled':<7} {'schedule':<8} {'next run':<25} {'last run':<25} result")
    for job in document["jobs"]:
        task = job["id"].removeprefix("task_")
        result = document["last_results"].get(task, {})
        numbers = ", ".join(f"{k} {v}" for k, v in result.items() if k not in ("status", "run_id"))
        print(
            f"  {task:<4} {job['function']:<24} {'yes' if job['enabled'] else 'no':<7} {job['schedule']:<8} "
            f"{job['next_run'] or '-':<25} {document['last_runs'].get(task, '-'):<25} "
            f"{result.get('status', 'never run')}{'; ' + numbers if numbers else ''}"
        )
        if job["waiting"]:
            print(f"       automation: {job['waiting']}")
    if not document["errors"]:
        print("No failed runs recorded.")
        return
    print("Latest failure per task:")
    for task, error in sorted(document["errors"].items()):
        print(
            f"  Task {task} {error['job']} at {error['timestamp']} (session {error['session'] or '-'}, "
            f"step {error['step'] or '-'}, run {error['run_id']}): {error['error']}"
        )


def print_switches(switches: list, on: bool) -> None:
    """What `turbomode start` / `stop` changed, one line per schedule or sensor."""
    changed = [s for s in switches if s.changed]
    print(f"{len(changed)} of {len(switches)} TurboMode schedules and sensors switched {'on' if on else 'off'}:")
    for switch in switches:
        note = f"{switch.before} -> {switch.after}" if switch.changed else f"already {switch.after}"
        print(f"  {switch.kind:<8} {switch.name:<36} {note}")
