"""Temp cleanup: a dead writer's temporaries and old scratch files go; a live writer's fresh temporary stays."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from turbomode_dagster.config import Maintenance
from turbomode_dagster.maintenance.files import (
    clean_atomic_temporaries,
    clean_step_outputs,
    clean_temp_folders,
    temp_folder_problem,
)
from turbomode_dagster.maintenance.weekly import run_maintenance
from turbomode_dagster.storage.atomic import atomic_write
from turbomode_dagster_tests.maintenance.helpers import write_aged

HOUR = 3600.0


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_temporaries_atomic_write_leaves_when_killed_are_found_and_removed(tmp_path: Path) -> None:
    now = time.time()
    target = tmp_path / "assets" / "feature_panel" / "2026-11-25.parquet"

    def die_mid_write(staging: Path) -> None:
        staging.write_bytes(b"half a parquet file")
        raise KeyboardInterrupt  # atomic_write removes its temporary on the way out; a SIGKILL would not

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, die_mid_write)
    leftover = write_aged(target.with_name(f".tmp-{_dead_pid()}-{target.name}"), b"x" * 100, 60, now)
    mine = write_aged(target.with_name(f".tmp-{os.getpid()}-{target.name}"), b"y" * 50, 60, now)
    stale = write_aged(tmp_path / "models" / "tm-0" / f".tmp-{os.getpid()}-manifest.json", b"z" * 7, 25 * HOUR, now)
    not_ours = write_aged(tmp_path / "assets" / ".tmp-notes.txt", b"keep", 25 * HOUR, now)

    outcome = clean_atomic_temporaries(tmp_path, now, 24 * HOUR)
    assert sorted(outcome.removed) == sorted([leftover, stale])
    assert (outcome.files, outcome.bytes) == (2, 107)
    assert mine.exists(), "a temporary of a running writer, younger than the age limit, may be mid-write"
    assert not_ours.exists(), "only atomic_write's .tmp-<pid>-<name> pattern is the platform's"
    assert not stale.parent.exists(), "a folder emptied by the cleanup goes too"
    again = clean_atomic_temporaries(tmp_path, now, 24 * HOUR)
    assert (again.files, again.bytes) == (0, 0)


def test_scratch_folders_lose_files_older_than_the_age_limit(tmp_path: Path) -> None:
    now = time.time()
    old = write_aged(tmp_path / "tmp" / "downloads" / "AAPL.csv", b"a" * 10, 48 * HOUR, now)
    fresh = write_aged(tmp_path / "tmp" / "today.csv", b"b" * 10, HOUR, now)
    (outcome,) = clean_temp_folders(tmp_path, ["tmp"], now, 24 * HOUR)
    assert outcome.removed == [old] and fresh.exists() and (tmp_path / "tmp").is_dir()
    assert not (tmp_path / "tmp" / "downloads").exists()
    (missing,) = clean_temp_folders(tmp_path, ["scratch"], now, 24 * HOUR)
    assert missing.files == 0 and not (tmp_path / "scratch").exists()


def test_a_failed_runs_handed_on_fits_go_once_older_than_the_age_limit(tmp_path: Path) -> None:
    now = time.time()
    steps = tmp_path / "steps"
    stale = write_aged(steps / "run-a" / "model_training.fit_hist" / "result.pkl", b"a" * 30, 30 * HOUR, now)
    write_aged(steps / "run-a" / "model_training.fit_linear" / "result.pkl", b"b" * 20, 26 * HOUR, now)
    # One fit of run-b is old, the other fresh: run-b may be re-executed from its failure, so it stays whole.
    write_aged(steps / "run-b" / "model_training.fit_hist" / "result.pkl", b"c" * 10, 30 * HOUR, now)
    fresh = write_aged(steps / "run-b" / "model_training.fit_linear" / "result.pkl", b"d" * 10, HOUR, now)
    outcome = clean_step_outputs(steps, now, 24 * HOUR)
    assert outcome.removed == [steps / "run-a"] and (outcome.files, outcome.bytes) == (2, 50)
    assert not stale.exists() and fresh.exists() and steps.is_dir()
    assert clean_step_outputs(tmp_path / "absent", now, 24 * HOUR).files == 0


@pytest.mark.parametrize(
    ("folder", "reason"),
    [
        ("/tmp", "inside TURBOMODE_HOME"),
        ("../elsewhere", "inside TURBOMODE_HOME"),
        ("tmp/../../x", "inside TURBOMODE_HOME"),
        ("models", "platform's own data"),
        ("assets/feature_panel", "platform's own data"),
        ("turbomode.db", "platform's own data"),
        (".", "platform's own data"),
        ("a\\b", "not a folder name"),
    ],
)
def test_a_scratch_folder_cannot_be_the_platforms_own_data_or_outside_the_home(folder: str, reason: str) -> None:
    assert reason in (temp_folder_problem(folder) or "")


def test_an_ordinary_scratch_folder_is_accepted() -> None:
    assert temp_folder_problem("tmp") is None and temp_folder_problem("exports/csv") is None


def test_the_weekly_pass_sweeps_a_failed_runs_fits_under_steps(tmp_path: Path) -> None:
    home = tmp_path / "home"
    now = dt.datetime(2026, 12, 6, 7, 0, tzinfo=dt.timezone.utc)
    old = write_aged(
        home / "steps" / "run-a" / "model_training.fit_hist" / "result.pkl", b"f" * 40, 48 * HOUR, now.timestamp()
    )
    report = run_maintenance(home, home / "market_data.db", None, Maintenance(), now)
    row = report.summary_table().set_index("target").loc["handed-on step outputs"]
    assert not old.exists() and (row["files"], row["bytes_reclaimed"]) == (1, 40)
