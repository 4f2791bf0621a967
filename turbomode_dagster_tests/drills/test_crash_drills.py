"""Crash drills: `kill -9` of a Task 1 run at several points, then a rerun in the same Dagster home.

Each drill checks what a hostile night can do: the Master DB stays intact with nothing half-written,
the pool slot the dead run held is given back (with a log line naming the run), the dead run is
marked failed, and the rerun completes with exactly the rows a clean run stores.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.orchestration.instance import write_dagster_home
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.storage.market_db import market_db_path
from turbomode_dagster_tests.conftest import dump_tables, write_config

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-11-25"
POOL = DATABASE_WRITE_POOL
PATCHES = {
    "universe.symbols": ["AAPL", "MSFT", "NVDA"],
    "history.start_date": "2026-10-01",
    "sources.order": ["sample"],
}
# Columns that record when a row was written, not what it holds.
STAMPS = {"ingestion_log", "quarantine"}

pytestmark = pytest.mark.slow


def _homes(root: Path) -> dict[str, str]:
    """A TURBOMODE_HOME and a DAGSTER_HOME with the shipped instance settings, as the environment."""
    config = write_config(root / "config.json", PATCHES)
    home, dagster_home = root / "home", root / "dagster_home"
    home.mkdir()
    write_dagster_home(load_settings(config), dagster_home)
    return {"TURBOMODE_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "TURBOMODE_CONFIG": str(config)}


def _child(env: dict[str, str], point: str, marker: Path) -> subprocess.Popen:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "turbomode_dagster_tests.drills.ingest_child", point, str(marker), DAY],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": path, "TURBOMODE_SOURCES": "sample"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _run_to_end(env: dict[str, str], root: Path, timeout: float = 180) -> str:
    child = _child(env, "none", root / "unused")
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        pytest.fail(f"the rerun did not finish in {timeout} s (blocked on the pool?):\n{output[-3000:]}")
    assert child.returncode == 0, output[-3000:]
    return output


def _content(db: Path) -> dict[str, list[tuple]]:
    """The Master DB's data tables, without the audit tables and write stamps."""
    tables = dump_tables(db)
    return {name: [row[:-1] for row in rows] for name, rows in tables.items() if name not in STAMPS}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """What one uninterrupted run stores."""
    root = tmp_path_factory.mktemp("clean")
    env = _homes(root)
    _run_to_end(env, root)
    return _content(market_db_path(Path(env["TURBOMODE_HOME"])))


@pytest.mark.parametrize("point", ["fetch", "mid_transaction", "after_commit"])
def test_a_run_killed_at_any_point_leaves_the_db_whole_and_the_rerun_completes(
    tmp_path: Path, clean: dict, point: str
) -> None:
    env = _homes(tmp_path)
    marker = tmp_path / "marker"
    child = _child(env, point, marker)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the child never reached the kill point"
        time.sleep(0.1)

    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        (held,) = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        dead_run = held.run_id
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)

    db = market_db_path(Path(env["TURBOMODE_HOME"]))
    if db.exists():
        with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as con:
            assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = _content(db)
        if point == "after_commit":
            assert stored == clean, "the committed partition must be complete"
        else:
            data = {name: rows for name, rows in stored.items() if name != "schema_version"}
            assert all(not rows for rows in data.values()), "nothing of the killed transaction may remain"

    output = _run_to_end(env, tmp_path)
    assert f"freed the pool slots held by run {dead_run}" in output
    assert "its process" in output and "is gone" in output
    assert _content(db) == clean, "the rerun must store exactly what a clean run stores, once"
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        info = instance.event_log_storage.get_concurrency_info(POOL)
        assert not info.claimed_slots and not info.pending_steps
