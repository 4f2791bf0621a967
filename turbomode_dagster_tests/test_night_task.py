"""The fresh process each step of `turbomode nightly` runs in: its output passed on, its end named."""

from __future__ import annotations

import signal

from turbomode_dagster import night_task
from turbomode_dagster.night_task import BAD_ARGUMENTS, ended_how, run_step_in_fresh_process


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


def test_the_child_reads_its_settings_from_the_environment_it_inherits(tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    monkeypatch.setenv("TURBOMODE_CONFIG", str(bad))
    assert run_step_in_fresh_process(2, "2026-11-25") == night_task.RUN_FAILED
    err = capsys.readouterr().err
    assert err.startswith("config error in") and str(bad) in err and "Traceback" not in err
