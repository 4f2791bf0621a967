"""The fresh process each step of `turbomode nightly` runs in: its output passed on, its end named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from turbomode_dagster import night_task
from turbomode_dagster.night_task import BAD_ARGUMENTS, ended_how, run_step_in_fresh_process
from turbomode_dagster_tests.conftest import DAY, ENV_VARS, SMALL_PATCHES
from turbomode_dagster_tests.test_cli import NIGHTLY_PATCHES


def test_a_step_runs_in_a_new_process_and_its_errors_reach_the_parent(capsys, monkeypatch) -> None:
    def in_this_process(number: int, day: str) -> int:
        raise AssertionError("the step ran in the parent process")

    monkeypatch.setattr(night_task, "run_step", in_this_process)  # a child process does not see this patch
    assert run_step_in_fresh_process(1, "2026-13-01") == BAD_ARGUMENTS
    err = capsys.readouterr().err
    assert err.startswith("--date: ") and "2026-13-01" in err


def test_a_killed_step_is_named_by_its_signal() -> None:
    assert ended_how(-signal.SIGKILL).startswith("its process was killed by SIGKILL (the kernel's out-of-memory")
    assert ended_how(-signal.SIGTERM) == "its process was killed by SIGTERM"
    assert ended_how(3) == "its process exited with code 3"
    assert ended_how(night_task.INTERRUPTED).startswith("interrupted (Ctrl-C)")


def test_the_child_reads_its_settings_from_the_environment_it_inherits(tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    monkeypatch.setenv("TURBOMODE_CONFIG", str(bad))
    assert run_step_in_fresh_process(2, "2026-11-25") == night_task.RUN_FAILED
    err = capsys.readouterr().err
    assert err.startswith("config error in") and str(bad) in err and "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_during_a_step_ends_the_night_with_its_summary_and_no_traceback(
    tmp_path: Path, make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches the whole process group, as in a terminal: the step's run ends as failed, the night
    stops there and prints its summary. Task 2 trains a learner of 5,000 rounds, so it is still running
    when the signal comes (on the small config it failed on its own first, at times before the signal)."""
    slow = [{"name": "slow", "kind": "xgboost", "params": {"n_estimators": 5000, "max_depth": 6, "n_jobs": 1}}]
    learners = [*NIGHTLY_PATCHES["models.learners"], *slow]
    config = make_config({**SMALL_PATCHES, **NIGHTLY_PATCHES, "sources.order": ["sample"], "models.learners": learners})
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(TURBOMODE_HOME=str(tmp_path / "home"), TURBOMODE_CONFIG=str(config))
    command = [str(Path(sys.executable).parent / "turbomode"), "nightly", "--date", DAY]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    ) as night:
        lines = []
        for line in night.stdout:
            lines.append(line)
            if line.startswith("[2/5] Task 2"):
                time.sleep(2)  # into the training run
                os.killpg(night.pid, signal.SIGINT)
                break
        lines.extend(night.stdout)
        code = night.wait(timeout=120)
    out = "".join(lines)
    assert code == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert f"Summary for {DAY}:" in out, out[-3000:]
    summary = out[out.index(f"Summary for {DAY}:") :]
    assert "Task 1 run_ingestion            ok" in summary
    assert "Task 2 run_orchestrator         FAILED" in summary
    assert "Task 3 run_overnight_scanner    not run" in summary
