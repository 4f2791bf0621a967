"""The Dagster instance on a real PostgreSQL server: the rendered file, a nightly, a sensor tick and status.

Every test gets its own database on one throw-away server (conftest.py); nothing here is mocked.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from turbomode_dagster.cli import main
from turbomode_dagster.config import POSTGRES_ENV, ConfigError, load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration import schedules
from turbomode_dagster.orchestration.code_location import TurboModeInstance
from turbomode_dagster.orchestration.instance import instance_yaml, open_instance, rendered_storage
from turbomode_dagster_tests.conftest import DAY, SMALL_PATCHES, write_config
from turbomode_dagster_tests.orchestration.nightwalk import evaluate_sensor, plant_run
from turbomode_dagster_tests.postgres.conftest import PASSWORD, PostgresDatabase
from turbomode_dagster_tests.test_cli import NIGHTLY_PATCHES

NY = ZoneInfo("America/New_York")
NIGHT_JOBS = [
    "run_ingestion",
    "run_orchestrator",
    "run_overnight_scanner",
    "run_backtest_generator",
    "run_drift_monitor",
]


def sqlite_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix == ".db" or p.name.endswith(".db-wal")]


def test_dagster_home_renders_postgres_storage_with_no_credential_in_the_file(
    postgres_db: PostgresDatabase, small_settings, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "dagster_home"
    assert main(["dagster-home", str(folder), "--storage", "postgres"]) == 0
    out = capsys.readouterr().out
    server = postgres_db.server
    assert f"storage: PostgreSQL {server.user}@127.0.0.1:{server.port}/{postgres_db.name}" in out
    text = (folder / "dagster.yaml").read_text()
    for secret in (PASSWORD, str(server.port), postgres_db.name):
        assert secret not in text
    assert text.startswith(instance_yaml(small_settings)), "the instance class, run queue and pools are kept"
    assert "scheme: postgresql+psycopg2" in text
    for var in POSTGRES_ENV.values():
        assert f"env: {var}\n" in text

    with open_instance(folder) as instance:
        assert type(instance) is TurboModeInstance
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
    tables = {name for (name,) in postgres_db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"runs", "event_logs", "jobs", "job_ticks", "concurrency_slots"} <= tables
    assert sqlite_files(folder) == []


def test_dagster_home_names_every_unset_variable_and_writes_nothing(
    postgres_db: PostgresDatabase, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("TURBOMODE_PG_HOST")
    monkeypatch.delenv("TURBOMODE_PG_PASSWORD")
    monkeypatch.setenv("TURBOMODE_PG_PORT", "54x")
    assert main(["dagster-home", str(tmp_path / "dh"), "--storage", "postgres"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("config error in environment: 3 problem(s)")
    assert "TURBOMODE_PG_HOST: not set (the PostgreSQL server's host)" in err
    assert "TURBOMODE_PG_PASSWORD: not set" in err
    assert "TURBOMODE_PG_PORT: '54x' is not a port number" in err
    assert not (tmp_path / "dh").exists()


def test_a_refused_login_keeps_the_folders_file(
    postgres_db: PostgresDatabase, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    folder = tmp_path / "dh"
    assert main(["dagster-home", str(folder)]) == 0
    before = (folder / "dagster.yaml").read_text()
    monkeypatch.setenv("TURBOMODE_PG_PASSWORD", "wrong")
    assert main(["dagster-home", str(folder), "--storage", "postgres"]) == 1
    err = capsys.readouterr().err
    assert f'cannot connect: connection to server at "127.0.0.1", port {postgres_db.server.port} failed' in err
    assert 'password authentication failed for user "turbomode"' in err
    assert "Traceback" not in err
    assert (folder / "dagster.yaml").read_text() == before


def test_an_instance_whose_variables_are_unset_says_which(
    postgres_db: PostgresDatabase, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    folder = tmp_path / "dagster_home"
    assert main(["dagster-home", str(folder), "--storage", "postgres"]) == 0
    monkeypatch.delenv("TURBOMODE_PG_PASSWORD")
    with pytest.raises(ConfigError) as raised:
        open_instance(folder)
    assert raised.value.source == str(folder / "dagster.yaml")
    assert raised.value.problems == [
        "storage.postgres.postgres_db.password: environment variable TURBOMODE_PG_PASSWORD is not set"
    ]
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    capsys.readouterr()
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"config error in {folder / 'dagster.yaml'}") and "TURBOMODE_PG_PASSWORD" in err


@pytest.mark.slow
def test_a_nightly_on_postgres_then_a_sensor_tick_and_status(
    postgres_db: PostgresDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    config = write_config(tmp_path / "config.json", {**SMALL_PATCHES, "sources.order": ["sample"], **NIGHTLY_PATCHES})
    home = tmp_path / "home"
    monkeypatch.setenv("TURBOMODE_CONFIG", str(config))
    monkeypatch.setenv("TURBOMODE_HOME", str(home))
    assert main(["dagster-home", str(home / "dagster_home"), "--storage", "postgres"]) == 0
    # No DAGSTER_HOME: the nightly re-renders <TURBOMODE_HOME>/dagster_home and keeps it on PostgreSQL.
    assert main(["nightly", "--date", DAY]) == 0, capsys.readouterr().out[-3000:]
    dagster_home = home / "dagster_home"
    assert rendered_storage(dagster_home / "dagster.yaml") == "postgres"
    assert sqlite_files(dagster_home) == [], "no run, event or schedule storage in SQLite"

    runs = postgres_db.query("SELECT run_id, pipeline_name, status FROM runs ORDER BY create_timestamp")
    assert [(job, status) for _, job, status in runs] == [(job, "SUCCESS") for job in NIGHT_JOBS]
    run_ids = {job: run_id for run_id, job, _ in runs}
    (materialized,) = postgres_db.query(
        "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
    )
    assert materialized[0] >= 8  # the four market-data tables, features, samples, models, signals, ...

    defs = build_definitions(load_settings(config))
    repo = defs.get_repository_def()
    sensor = defs.resolve_sensor_def("run_orchestrator_after_upstream")
    with open_instance(dagster_home) as instance:
        # the night the CLI ran: the sensor reads that night's runs from PostgreSQL and starts nothing
        monkeypatch.setattr(schedules, "clock", lambda: dt.datetime(2026, 11, 25, 23, 30, tzinfo=NY))
        tick = evaluate_sensor(sensor, instance, repo)
        assert tick.run_requests == []
        assert tick.skip_message == (
            f"run_orchestrator for {DAY} was already run by hand (run {run_ids['run_orchestrator']}, succeeded)"
        )
        # the night before, ingestion finishing at 23:20 (after the 23:00 tick): the sensor starts training once
        plant_run(
            instance,
            defs,
            "run_ingestion",
            "2026-11-24",
            dt.datetime(2026, 11, 24, 23, 5, tzinfo=NY),
            dt.datetime(2026, 11, 24, 23, 20, tzinfo=NY),
        )
        monkeypatch.setattr(schedules, "clock", lambda: dt.datetime(2026, 11, 24, 23, 20, 20, tzinfo=NY))
        tick = evaluate_sensor(sensor, instance, repo)
        assert [(r.run_key, r.partition_key) for r in tick.run_requests] == [
            ("run_orchestrator:2026-11-24", "2026-11-24")
        ]
        assert json.loads(tick.cursor) == ["2026-11-24"]
        again = evaluate_sensor(sensor, instance, repo, tick.cursor)
        assert again.run_requests == []
        assert again.skip_message == "run_orchestrator for 2026-11-24 was already started by automation"

    capsys.readouterr()
    monkeypatch.setattr(schedules, "clock", lambda: dt.datetime.now(dt.timezone.utc))
    assert main(["status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    results = document["last_results"]
    assert {task: (r["run_id"], r["status"], r["session"]) for task, r in results.items() if task != "1"} == {
        str(number): (run_ids[job], "success", DAY) for number, job in enumerate(NIGHT_JOBS, start=1) if number != 1
    }
    # the planted run is task 1's latest; the night's own numbers are on the others
    assert results["1"]["session"] == "2026-11-24"
    assert results["5"]["features_alerting"] >= 0
