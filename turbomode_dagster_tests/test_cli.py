"""The `turbomode` command and the `dagster` CLI paths a user runs, in and out of process.

The end-to-end runs (marked slow, still in the default suite) use the built-in sample source on three
symbols from 2026-11-02; they start together in the background and each test waits for its own.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from turbomode_dagster import calendar
from turbomode_dagster.cli import main
from turbomode_dagster.config import SHIPPED_CONFIG, load_settings
from turbomode_dagster.night_task import catching_up
from turbomode_dagster.orchestration.instance import instance_yaml
from turbomode_dagster_tests.conftest import (
    DAY,
    ENV_VARS,
    HISTORY_START,
    SMALL_PATCHES,
    UNIVERSE,
    shipped_config,
    trust_the_instance_for_the_home,
    write_config,
)

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
END_TO_END_TIMEOUT = 300


def bad_config(path: Path) -> Path:
    raw = shipped_config()
    tasks = raw["scheduled_tasks"]
    tasks[0]["schedule"]["hour"] = 25
    tasks[1]["task_id"] = tasks[0]["task_id"]
    raw["global_settings"]["timezone"] = "Mars/Olympus_Mons"
    tasks[2]["schedule"]["day_of_week"] = "funday"
    path.write_text(json.dumps(raw, indent=2))
    return path


def test_validate_accepts_the_shipped_config(capsys) -> None:
    assert main(["config", "validate", str(SHIPPED_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"{SHIPPED_CONFIG}: OK (6 tasks, 6 enabled; 83 symbols; sources ibkr -> yahoo)"


def test_validate_defaults_to_turbomode_config(config_file: Path, capsys) -> None:
    assert main(["config", "validate"]) == 0
    assert capsys.readouterr().out.startswith(f"{config_file}: OK (6 tasks, 6 enabled; 3 symbols; sources csv)")


def test_validate_lists_every_bad_field(tmp_path: Path, capsys) -> None:
    assert main(["config", "validate", str(bad_config(tmp_path / "bad.json"))]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == f"{tmp_path / 'bad.json'}: INVALID, {len(lines) - 1} problem(s):"
    problems = [line.removeprefix("  - ") for line in lines[1:]]
    assert all(line.startswith("  - ") for line in lines[1:])
    for path in (
        "scheduled_tasks[0].schedule.hour:",
        "scheduled_tasks[1]:",
        "global_settings.timezone:",
        "scheduled_tasks[2].schedule.day_of_week:",
    ):
        assert any(p.startswith(path) for p in problems), f"{path} not reported in {problems}"
    assert "scheduled_tasks: duplicate task_id 1" in problems
    assert "Traceback" not in captured.out + captured.err


def test_validate_names_the_line_of_broken_json(tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.json"
    text = json.dumps(shipped_config(), indent=2)[:200]
    broken.write_text(text)
    with pytest.raises(json.JSONDecodeError) as error:
        json.loads(text)
    assert main(["config", "validate", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "INVALID, 1 problem(s)" in out
    assert f"  - line {error.value.lineno} column {error.value.colno}: invalid JSON" in out


def test_validate_a_missing_file(tmp_path: Path, capsys) -> None:
    assert main(["config", "validate", str(tmp_path / "nope.json")]) == 1
    assert "cannot read the file" in capsys.readouterr().out


def test_the_console_script_validates(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "turbomode"), "config", "validate", str(bad_config(tmp_path / "bad.json"))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    for needle in ("hour", "task_id", "timezone", "day_of_week"):
        assert needle in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_dagster_home_renders_the_instance_yaml(config_file: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "dh"
    assert main(["dagster-home", str(folder)]) == 0
    assert (folder / "dagster.yaml").read_text() == instance_yaml(load_settings(config_file))
    assert f"export DAGSTER_HOME={folder}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2026-11-26", "2026-11-26 is not an NYSE session; the previous session is 2026-11-25"),
        ("2026-11-28", "the previous session is 2026-11-27"),
        ("next tuesday", "not a date in YYYY-MM-DD form"),
    ],
)
def test_nightly_refuses_a_day_that_is_not_a_session(config_file: Path, capsys, date: str, message: str) -> None:
    assert main(["nightly", "--date", date]) == 2
    assert message in capsys.readouterr().err


def test_nightly_reports_a_bad_config_without_a_traceback(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TURBOMODE_CONFIG", str(bad_config(tmp_path / "bad.json")))
    assert main(["nightly", "--date", DAY]) == 1
    err = capsys.readouterr().err
    assert err.startswith("config error in")
    assert "global_settings.timezone" in err


@dataclass
class Background:
    """A CLI command running in its own TURBOMODE_HOME and DAGSTER_HOME."""

    process: subprocess.Popen
    home: Path
    log: Path

    def wait(self) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=END_TO_END_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return code, self.log.read_text()

    def bars(self) -> list[tuple]:
        con = sqlite3.connect(f"{(self.home / 'market_data.db').as_uri()}?mode=ro", uri=True)
        try:
            return con.execute("SELECT symbol, date, source FROM daily_bars ORDER BY symbol, date").fetchall()
        finally:
            con.close()


# The nightly trains and scans too: enough history for walk-forward folds, two small learners.
NIGHTLY_HISTORY_START = "2024-06-03"
NIGHTLY_PATCHES = {
    "history.start_date": NIGHTLY_HISTORY_START,
    "universe.symbols": [*UNIVERSE, "JPM", "XOM", "KO"],
    "sources.sample.planted_effect": 1.0,
    "models.n_folds": 3,
    "models.shap_rows": 200,
    "models.learners": [
        {"name": "hist", "kind": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}},
        {
            "name": "linear",
            "kind": "xgboost",
            "params": {"booster": "gblinear", "updater": "coord_descent", "n_estimators": 10, "n_jobs": 1},
        },
    ],
}

END_TO_END = {
    "job_execute": [
        str(BIN / "dagster"),
        "job",
        "execute",
        "-m",
        "turbomode_dagster.definitions",
        "-j",
        "run_ingestion",
        "--tags",
        json.dumps({"dagster/partition": DAY}),
    ],
    "asset_materialize": [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "turbomode_dagster.definitions",
        # The four tables are one multi-asset written in one transaction: select them together. A range of
        # sessions runs as one run (the asset's single-run backfill policy): the README's backfill command.
        "--select",
        "daily_bars,corporate_actions,fundamentals,symbol_metadata",
        "--partition-range",
        f"{HISTORY_START}...{DAY}",
    ],
    "nightly": [str(BIN / "turbomode"), "nightly", "--date", DAY, "--sources", "sample"],
}


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory: pytest.TempPathFactory):
    """Start every end-to-end command at once (they share the machine's two cores better than in turn)."""
    runs: dict[str, Background] = {}
    for name, command in END_TO_END.items():
        root = tmp_path_factory.mktemp(name)
        home, dagster_home = root / "home", root / "dagster_home"
        home.mkdir()
        dagster_home.mkdir()
        patches = {**SMALL_PATCHES, "sources.order": ["sample"], **(NIGHTLY_PATCHES if name == "nightly" else {})}
        config = write_config(root / "config.json", patches)
        (dagster_home / "dagster.yaml").write_text(instance_yaml(load_settings(config)))
        env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
        env.update(TURBOMODE_HOME=str(home), DAGSTER_HOME=str(dagster_home), TURBOMODE_CONFIG=str(config))
        log = root / "output.log"
        with log.open("w") as out:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        runs[name] = Background(process, home, log)
    yield runs
    for run in runs.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def assert_runs_attached(run: Background, jobs: set[str]) -> None:
    """Every run the command made carries the turbomode code location's origin (the UI lists it under its job)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(run.home.parent / "dagster_home")) as instance:
        runs = instance.get_runs()
    assert {r.job_name for r in runs} == jobs
    assert {r.remote_job_origin.repository_origin.get_label() for r in runs if r.remote_job_origin} == {
        "__repository__@turbomode"
    }
    assert all(r.remote_job_origin is not None for r in runs), [r.job_name for r in runs if not r.remote_job_origin]


def step_process_ids(run: Background) -> dict[str, int]:
    """The process each run's steps executed in, by job: the pid of Dagster's in-process executor event."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    with dg.DagsterInstance.from_config(str(run.home.parent / "dagster_home")) as instance:
        pids = {}
        for record in instance.get_runs():
            for entry in instance.all_logs(record.run_id, of_type=DagsterEventType.ENGINE_EVENT):
                if (pid := entry.dagster_event.event_specific_data.metadata.get("pid")) is not None:
                    pids[record.job_name] = int(pid.value)
    return pids


def assert_ingested(run: Background, first: str) -> None:
    """The sample source's bars for every symbol on every session from `first` to DAY, and no others."""
    bars = run.bars()
    assert sorted(symbol for symbol, date, _ in bars if date == DAY) == sorted(UNIVERSE)
    assert {source for *_, source in bars} == {"sample"}
    assert {date for _, date, _ in bars} == set(calendar.sessions(first, DAY))
    assert len(bars) == len(UNIVERSE) * len(calendar.sessions(first, DAY))


@pytest.mark.slow
def test_dagster_job_execute_run_ingestion(end_to_end) -> None:
    code, log = end_to_end["job_execute"].wait()
    assert code == 0, log[-3000:]
    assert "RUN_SUCCESS" in log
    assert_ingested(end_to_end["job_execute"], DAY)  # partition DAY is DAY's rows, on a fresh home too
    assert_runs_attached(end_to_end["job_execute"], {"run_ingestion"})


@pytest.mark.slow
def test_dagster_asset_materialize_the_market_data(end_to_end) -> None:
    code, log = end_to_end["asset_materialize"].wait()
    assert code == 0, log[-3000:]
    assert_ingested(end_to_end["asset_materialize"], HISTORY_START)
    assert_runs_attached(end_to_end["asset_materialize"], {"__ASSET_JOB"})
    import dagster as dg

    with dg.DagsterInstance.from_config(str(end_to_end["asset_materialize"].home.parent / "dagster_home")) as instance:
        assert len(instance.get_runs()) == 1, "a range of partitions is one run"
        for key in ("daily_bars", "corporate_actions", "fundamentals", "symbol_metadata"):
            assert instance.get_materialized_partitions(dg.AssetKey(key)) == set(calendar.sessions(HISTORY_START, DAY))


@pytest.mark.slow
def test_turbomode_nightly_end_to_end(end_to_end) -> None:
    run = end_to_end["nightly"]
    code, log = run.wait()
    assert code == 0, log[-3000:]
    assert f"TurboMode nightly for {DAY}: home {run.home}, sources sample" in log
    sessions = len(calendar.sessions(NIGHTLY_HISTORY_START, DAY))
    catch_up = f"(catching up {NIGHTLY_HISTORY_START}...{DAY}, {sessions} sessions, in one run)"
    assert f"[1/5] Task 1 run_ingestion (Master Market Data Ingestion) {catch_up} ..." in log
    for task in (
        "Task 1 run_ingestion",
        "Task 2 run_orchestrator",
        "Task 3 run_overnight_scanner",
        "Task 4 run_backtest_generator",
    ):
        assert f"{task} (" in log, task
    assert "bars by source {'sample': " in log
    assert "checks universe_complete ok, no_unexplained_jumps ok" in log
    summary = log[log.index(f"Summary for {DAY}:") :]
    jobs = ("run_ingestion", "run_orchestrator", "run_overnight_scanner", "run_backtest_generator", "run_drift_monitor")
    for number, job in enumerate(jobs, start=1):
        assert any(line.split()[:4] == ["Task", str(number), job, "ok"] for line in summary.splitlines()), job
    assert f"Master Market Data DB: {run.home}/market_data.db" in summary
    signals = log[log.index("Signals for 2026-11-27 (as of 2026-11-25") : log.index("\nBacktest ")]
    rows = [line.split() for line in signals.splitlines()[2:] if line.strip()]
    assert sorted(row[0] for row in rows) == sorted(NIGHTLY_PATCHES["universe.symbols"])
    assert {row[1] for row in rows} <= {"BUY", "SELL", "HOLD"}
    assert "Traceback" not in log
    (backtest,) = [line for line in log.splitlines() if line.startswith("Backtest ")]
    (drift,) = [line for line in log.splitlines() if line.startswith("Drift ")]
    assert log.rstrip().endswith(f"{backtest}\n\n{drift}")  # the night ends with the backtest line, then drift
    assert re.fullmatch(
        r"Drift 2026-11-25 against tm-\w+: \d+ of \d+ monitored features on alert.*; "
        r"(no retraining flag|retraining flag raised .*)",
        drift,
    )
    assert re.fullmatch(
        r"Backtest \d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d \(out of fold\): "
        r"ensemble net CAGR [+-]\d+\.\d%, Sharpe -?\d+\.\d\d, max drawdown -?\d+\.\d%; "
        r"benchmark:equal_weight net CAGR .*; chance percentile \d+ among 20 .*",
        backtest,
    ), backtest
    bars = run.bars()
    assert sorted(symbol for symbol, date, _ in bars if date == DAY) == sorted(NIGHTLY_PATCHES["universe.symbols"])
    assert_runs_attached(run, set(jobs))
    pids = step_process_ids(run)
    assert sorted(pids) == sorted(jobs), "one run per task"
    assert len(set(pids.values())) == len(jobs) and run.process.pid not in pids.values(), "a fresh process per task"


@pytest.fixture
def sample_home(home: Path, make_config, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home with the small config on the built-in sample source (fast: three symbols, a month)."""
    monkeypatch.setenv("TURBOMODE_CONFIG", str(make_config({**SMALL_PATCHES, "sources.order": ["sample"]})))
    return home


def test_run_refuses_an_unknown_task(sample_home: Path, capsys) -> None:
    assert main(["run", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "turbomode run: unknown task 'nonsense': use a task id or function name, one of 1 (run_ingestion)"
    )
    assert "Traceback" not in err


def test_run_refuses_a_day_that_is_not_a_session(sample_home: Path, capsys) -> None:
    assert main(["run", "1", "--date", "2026-11-26"]) == 2
    assert "2026-11-26 is not an NYSE session; the previous session is 2026-11-25" in capsys.readouterr().err


def test_run_of_the_unpartitioned_maintenance_task_takes_no_date(sample_home: Path, capsys) -> None:
    from turbomode_dagster.config import load_settings
    from turbomode_dagster.definitions import build_definitions

    assert main(["run", "6", "--date", DAY]) == 2
    err = capsys.readouterr().err
    if "run_weekly_maintenance" in {j.name for j in build_definitions(load_settings()).resolve_all_job_defs()}:
        assert "--date: task 6 (run_weekly_maintenance) is not run per session" in err
    else:  # before Task 6 exists, the task is refused by name
        assert "task 6 (run_weekly_maintenance) has no job in the code location" in err


def test_a_run_over_more_than_its_night_says_so() -> None:
    assert catching_up((DAY, DAY)) == "" and catching_up(None) == ""
    assert catching_up((HISTORY_START, DAY)) == f" (catching up {HISTORY_START}...{DAY}, 18 sessions, in one run)"


def test_run_one_task_attached_to_the_code_location(sample_home: Path, capsys, monkeypatch) -> None:
    import dagster as dg

    from turbomode_dagster.orchestration.partitions import SESSION_KEYED_ASSETS

    trust_the_instance_for_the_home(monkeypatch)  # the home holds what the instance records below
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:  # every session before DAY stored
        for key in SESSION_KEYED_ASSETS:
            for session in calendar.sessions(HISTORY_START, "2026-11-24"):
                instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=session))
    assert main(["run", "run_ingestion", "--date", DAY]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Task 1 run_ingestion (Master Market Data Ingestion) for {DAY}: home {sample_home}"
    assert out[1].lstrip().startswith("done in ")
    assert out[2] == "Results: symbols_processed 3, candles_ingested 3, quarantined_rows 0, symbols_failed 0"
    with dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"]) as instance:
        (run,) = instance.get_runs()
        assert run.remote_job_origin.repository_origin.get_label() == "__repository__@turbomode"
        assert run.tags["dagster/partition"] == DAY

    assert main(["status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"running", "version", "jobs", "last_runs", "last_results", "errors"}
    assert document["last_results"]["1"]["status"] == "success"
    assert document["last_results"]["1"]["candles_ingested"] == 3


def test_a_failed_run_is_reported_and_shown_by_status(sample_home: Path, capsys) -> None:
    assert main(["run", "2", "--date", DAY]) == 1  # no Task 1 run yet: no training samples
    err = capsys.readouterr().err
    assert "step model_training failed: LookupError: " in err and "materialise training_samples" in err
    assert "Traceback" not in err
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "Latest failure per task:" in out
    (line,) = [x for x in out.splitlines() if x.startswith("  Task 2 run_orchestrator at ")]
    assert f"(session {DAY}, step model_training, run " in line
    assert line.endswith("materialise training_samples for those sessions first")


def test_stop_then_start_switch_every_schedule_and_sensor(sample_home: Path, capsys) -> None:
    assert main(["stop"]) == 0
    out = capsys.readouterr().out.splitlines()
    count = len(out) - 1
    assert out[0] == f"{count} of {count} TurboMode schedules and sensors switched off:"
    assert "  schedule run_ingestion_schedule" in "\n".join(out)
    assert all(line.endswith("running -> stopped") for line in out[1:])
    assert main(["stop"]) == 0
    assert capsys.readouterr().out.startswith(f"0 of {count} TurboMode schedules and sensors switched off:")
    assert main(["start"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{count} of {count} TurboMode schedules and sensors switched on:"
    assert all(line.endswith("stopped -> running") for line in out[1:])


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`turbomode config validate | head -c 0`: no BrokenPipeError traceback when the pipe is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone: every write raises EPIPE
    try:
        writer = subprocess.run(
            [sys.executable, "-m", "turbomode_dagster.cli", "config", "validate"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=tmp_path, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert "Traceback" not in writer.stderr and "BrokenPipe" not in writer.stderr, writer.stderr
    assert writer.returncode == 141
