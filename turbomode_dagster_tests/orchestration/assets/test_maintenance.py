"""Task 6 materialised on a populated temporary home: space reclaimed once, damage reported, the pool respected."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType

from turbomode_dagster.config import Settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.assets.maintenance import build_maintenance_assets
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.storage.market_db import MarketDBWriter, market_db_path
from turbomode_dagster.storage.turbomode_db import CHALLENGER, CHAMPION, ModelRecord, TurboModeDB
from turbomode_dagster_tests.maintenance.helpers import damaged_copy, database_with_dead_rows, sha256, write_aged

DAY = 86_400.0
CHAMPION_VERSION, OLD_VERSION = "tm-00000000000a", "tm-00000000000b"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _master_db_with_deleted_rows(home: Path) -> None:
    writer = MarketDBWriter(market_db_path(home))
    with writer.transaction():
        writer.con.executemany(
            "INSERT INTO daily_bars VALUES (?, ?, 1, 1, 1, 1, 1, 'fake', 'now')",
            ((f"S{i % 300}", f"2020-{i:06d}") for i in range(30_000)),
        )
        writer.con.execute("DELETE FROM daily_bars WHERE symbol <> 'S1'")
    writer.close()


def _turbomode_db_with_registry(home: Path, versions: int = 8) -> None:
    db = TurboModeDB.at_home(home)
    for n in range(versions):
        version = CHAMPION_VERSION if n == 0 else f"tm-{n + 0xB - 1:012x}"
        status = CHAMPION if n == 0 else CHALLENGER
        db.upsert_model(
            ModelRecord(version, f"2026-11-{n + 1:02d}T00:00:00+00:00", status, "f", ["rsi_14"], {}, {}, "x")
        )
        (home / "models" / version).mkdir(parents=True)
        (home / "models" / version / "manifest.json").write_bytes(b"m" * 1000)
    with db.writing() as con:
        con.executemany(
            "INSERT INTO training_runs (run_id, started_at, status, error) VALUES (?, 'now', 'failed', ?)",
            ((f"run-{i}", "x" * 200) for i in range(5_000)),
        )
        con.execute("DELETE FROM training_runs")


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        yield instance


@pytest.fixture
def populated(home: Path, small_settings: Settings, instance: dg.DagsterInstance) -> dict[str, Path]:
    """Both databases with deleted rows, 70 sessions of a Parquet asset, 8 models, old logs, a dead writer's temp."""
    now = time.time()
    _master_db_with_deleted_rows(home)
    _turbomode_db_with_registry(home)
    for n in range(70):
        write_aged(
            home / "assets" / "feature_panel" / f"2026-{1 + n // 28:02d}-{1 + n % 28:02d}.parquet", b"p" * 10, 0, now
        )
    storage = Path(instance.root_directory) / "storage"
    return {
        "home": home,
        "platform_log": write_aged(home / "logs" / "dagster-dev.log", b"old log line\n" * 40, 45 * DAY, now),
        "compute_log": write_aged(storage / "old-run" / "compute_logs" / "abc.err", b"old stderr\n", 31 * DAY, now),
        "fresh_log": write_aged(home / "logs" / "today.log", b"new\n", 60, now),
        "temporary": write_aged(home / "assets" / "feature_panel" / f".tmp-{_dead_pid()}-x.parquet", b"t" * 5, 60, now),
    }


def _materialize(settings: Settings, home: Path, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    turbomode = TurboModeHome(home=str(home))
    return dg.materialize(
        [build_maintenance_assets(settings)],
        instance=instance,
        resources={"turbomode": turbomode, "master_db": MasterDBWriteAccess(turbomode=turbomode)},
        raise_on_error=False,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_a_weekly_run_reclaims_space_prunes_archives_and_the_next_run_does_nothing(
    populated: dict[str, Path], small_settings: Settings, instance: dg.DagsterInstance
) -> None:
    home = populated["home"]
    sizes = {name: (home / name).stat().st_size for name in ("market_data.db", "turbomode.db")}
    first = _materialize(small_settings, home, instance)
    assert first.success
    meta = _metadata(first)
    for name, before in sizes.items():
        after = (home / name).stat().st_size
        assert after < before / 2, f"{name}: VACUUM must give back the deleted rows' pages"
        assert meta[f"{name.removesuffix('.db')}_bytes"] == after
        assert meta[f"{name.removesuffix('.db')}_bytes_reclaimed"] >= before - after
    assert meta["databases_damaged"] == 0 and meta["logs_archived"] == 2
    # 10 Parquet sessions beyond keep_sessions (60), 2 model versions beyond champion + newest 5, 1 temporary
    assert meta["files_removed"] == 10 + 2 + 1
    assert meta["models_kept"]["champion"] == CHAMPION_VERSION
    assert (home / "models" / CHAMPION_VERSION).exists() and not (home / "models" / OLD_VERSION).exists()
    assert len(list((home / "assets" / "feature_panel").glob("*.parquet"))) == 60
    assert not populated["platform_log"].exists() and not populated["compute_log"].exists()
    assert populated["fresh_log"].exists() and not populated["temporary"].exists()
    assert Path(meta["archive"]).parent == home / "archive"
    (check,) = first.get_asset_check_evaluations()
    assert check.passed and check.check_name == "databases_intact"
    summary = {row.data["target"]: row.data for row in meta["summary"].records}
    assert summary["database market_data"]["result"] == "vacuumed"
    assert summary["parquet partitions"]["files"] == 10

    second = _materialize(small_settings, home, instance)
    assert second.success
    again = _metadata(second)
    assert again["bytes_reclaimed"] == 0 and again["files_removed"] == 0 and again["logs_archived"] == 0
    assert again["market_data_bytes_reclaimed"] == 0 and again["turbomode_bytes_reclaimed"] == 0
    assert len(list((home / "archive").iterdir())) == 1


def test_a_damaged_database_fails_the_run_naming_it_and_is_not_vacuumed(
    populated: dict[str, Path], small_settings: Settings, instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    home = populated["home"]
    (home / "turbomode.db").unlink()
    source = database_with_dead_rows(tmp_path / "healthy.db", rows=40_000, keep=30_000)
    damaged = damaged_copy(source, home / "turbomode.db")
    fingerprint, master_before = sha256(damaged), (home / "market_data.db").stat().st_size
    result = _materialize(small_settings, home, instance)
    assert not result.success, "a damaged database must fail the run, not hide in metadata"
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    damaged_meta = check.metadata["damaged"].value
    assert set(damaged_meta) == {"turbomode"} and damaged_meta["turbomode"]["path"] == str(damaged)
    assert "On tree page" in " ".join(damaged_meta["turbomode"]["messages"])
    assert "turbomode failed integrity_check" in check.description
    assert sha256(damaged) == fingerprint, "the damaged file is not vacuumed or checkpointed"
    assert (home / "market_data.db").stat().st_size < master_before, "the healthy database is still vacuumed"
    meta = _metadata(result)
    assert meta["databases_damaged"] == 1 and "cannot be trusted" in meta["models_kept"]
    assert len(list((home / "models").iterdir())) == 8, "no registry to trust: every model artifact is kept"


@dg.op
def model_training() -> None:
    """Stands for a writer's step in a run these tests create by hand."""


@dg.job
def training_like() -> None:
    model_training()


def _live_writer_holding_the_pool(instance: dg.DagsterInstance) -> str:
    """A started run from this (live) process that holds the pool's one slot, as a training step would."""
    storage = instance.event_log_storage
    assert storage.initialize_concurrency_limit_to_default(DATABASE_WRITE_POOL)  # dagster.yaml's default_limit: 1
    assert storage.get_concurrency_info(DATABASE_WRITE_POOL).slot_count == 1
    run = instance.create_run_for_job(training_like)
    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=run.job_name, pid=os.getpid()), run_id=run.run_id
    )
    assert instance.event_log_storage.claim_concurrency_slot(
        DATABASE_WRITE_POOL, run.run_id, "model_training"
    ).is_claimed
    return run.run_id


def _step_started(instance: dg.DagsterInstance, run_id: str | None) -> float | None:
    if run_id is None:
        return None
    starts = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
    return starts[0].timestamp if starts else None


def test_maintenance_waits_while_a_writer_holds_the_pool(
    populated: dict[str, Path], small_settings: Settings, instance: dg.DagsterInstance
) -> None:
    writer = _live_writer_holding_the_pool(instance)
    job = build_definitions(small_settings).resolve_job_def("run_weekly_maintenance")
    outcome: dict[str, dg.ExecuteInProcessResult] = {}
    thread = threading.Thread(target=lambda: outcome.update(result=job.execute_in_process(instance=instance)))
    thread.start()
    try:
        deadline, pending = time.monotonic() + 60, None
        while pending is None and time.monotonic() < deadline:
            info = instance.event_log_storage.get_concurrency_info(DATABASE_WRITE_POOL)
            pending = next((s.run_id for s in info.pending_steps if s.run_id != writer), None)
            time.sleep(0.2)
        assert pending is not None, "maintenance never asked the pool for a slot"
        time.sleep(3)
        assert thread.is_alive() and _step_started(instance, pending) is None, "it must wait for the writer"
        freed_at = time.time()
        instance.event_log_storage.free_concurrency_slots_for_run(writer)
    finally:
        thread.join(timeout=90)
    assert not thread.is_alive() and outcome["result"].success
    started = _step_started(instance, outcome["result"].run_id)
    assert started is not None and started >= freed_at
