"""Whole nights walked tick by tick on a frozen clock against a real test instance: the dependency order."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from turbomode_dagster.chain.rule import DEPENDENCIES
from turbomode_dagster.config import Settings, TaskId, load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration import schedules
from turbomode_dagster.orchestration.chaining import FINAL_ASSETS, latest_session, waiting_reason
from turbomode_dagster_tests.conftest import SMALL_PATCHES
from turbomode_dagster_tests.orchestration.nightwalk import Daemon, Launch, evaluate_sensor, run_event

NY = ZoneInfo("America/New_York")
SESSION = "2026-11-24"  # a Tuesday; its night runs 22:45 Tuesday .. 00:30 Wednesday


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, second, tzinfo=NY)


@pytest.fixture
def settings_with(make_config, home):
    def make(**patches: object) -> Settings:
        return load_settings(make_config({**SMALL_PATCHES, **patches}))

    return make


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def daemon(settings_with, instance, monkeypatch):
    def make(patches: dict[str, object] | None = None, **kwargs) -> Daemon:
        return Daemon(settings_with(**(patches or {})), instance, monkeypatch, **kwargs)

    return make


def test_upstream_on_time_every_task_starts_at_its_configured_time(daemon) -> None:
    night = daemon()
    night.walk(at(24, 22, 40), at(25, 0, 45))
    assert night.launched() == [
        Launch("22:45", "run_ingestion", "run_ingestion_schedule", SESSION),
        Launch("23:00", "run_orchestrator", "run_orchestrator_schedule", SESSION),
        Launch("23:30", "run_overnight_scanner", "run_overnight_scanner_schedule", SESSION),
        Launch("00:00", "run_backtest_generator", "run_backtest_generator_schedule", SESSION),
        Launch("00:30", "run_drift_monitor", "run_drift_monitor_schedule", SESSION),
    ]
    sensor_said = set(night.skips["run_orchestrator_after_upstream"])
    assert f"run_orchestrator for {SESSION} was already started by automation" in sensor_said


def test_a_fresh_home_catches_up_in_one_ingestion_run_and_the_night_follows_it(daemon) -> None:
    night = daemon(fresh=True)
    night.walk(at(24, 22, 40), at(24, 23, 5))
    assert night.launched() == [
        Launch("22:45", "run_ingestion", "run_ingestion_schedule", f"2026-11-02...{SESSION}"),
        Launch("23:00", "run_orchestrator", "run_orchestrator_schedule", SESSION),  # the range run covers SESSION
    ]


def test_ingestion_an_hour_late_every_task_follows_it_the_same_night_once(daemon) -> None:
    # ingestion runs 75 minutes (22:45 .. 00:00), training 20 (.. 00:20), the backtest 12 (.. 00:32).
    night = daemon(minutes={TaskId.INGESTION: 75, TaskId.ORCHESTRATOR: 20, TaskId.BACKTEST_GENERATOR: 12})
    night.walk(at(24, 22, 40), at(25, 2, 0))
    assert night.launched() == [
        Launch("22:45", "run_ingestion", "run_ingestion_schedule", SESSION),
        Launch("00:00", "run_orchestrator", "run_orchestrator_after_upstream", SESSION),
        Launch("00:20", "run_backtest_generator", "run_backtest_generator_after_upstream", SESSION),
        Launch("00:20", "run_overnight_scanner", "run_overnight_scanner_after_upstream", SESSION),
        Launch("00:32", "run_drift_monitor", "run_drift_monitor_after_upstream", SESSION),
    ]
    (tick_skip,) = [m for m in night.skips["run_orchestrator_schedule"]]
    assert (
        tick_skip
        == f"run_orchestrator for {SESSION} waits on run_ingestion (running, run {night.run_id('run_ingestion')})"
    )


def test_a_failed_upstream_stops_its_dependents_and_says_so(daemon, instance) -> None:
    night = daemon(failing={TaskId.INGESTION})
    night.walk(at(24, 22, 40), at(25, 2, 0))
    assert [launch.job for launch in night.launched()] == ["run_ingestion"]
    cfg = night.settings
    failed = night.run_id("run_ingestion")
    reason = waiting_reason(instance, cfg, TaskId.ORCHESTRATOR, SESSION)
    assert reason == (
        f"run_orchestrator for {SESSION} will not start: upstream failed: run_ingestion (run {failed}); "
        "rerun it by hand, then run_orchestrator follows"
    )
    assert "upstream failed: run_ingestion" in waiting_reason(instance, cfg, TaskId.BACKTEST_GENERATOR, SESSION)
    assert waiting_reason(instance, cfg, TaskId.OVERNIGHT_SCANNER, SESSION) == (
        f"run_overnight_scanner for {SESSION} waits on run_orchestrator (no run)"
    )


def test_a_holiday_has_no_session_and_nothing_starts(daemon) -> None:
    night = daemon()
    night.walk(at(26, 22, 40), at(27, 0, 45))  # Thanksgiving 2026: the NYSE is closed
    assert night.launched() == []
    assert night.skips["run_orchestrator_schedule"] == [
        "no NYSE session precedes the tick of 2026-11-26T23:00:00-05:00 on that day"
    ]


def test_daemon_down_across_the_tick_and_back_within_the_grace_time_still_starts_it(daemon) -> None:
    night = daemon()  # misfire_grace_time 300 s; ingestion done at 22:55
    night.walk(at(24, 22, 40), at(24, 23, 15), down=(at(24, 22, 59), at(24, 23, 4)))
    assert night.launched()[1] == Launch("23:04", "run_orchestrator", "run_orchestrator_schedule", SESSION)


def test_daemon_down_beyond_the_grace_time_the_task_is_not_started(daemon) -> None:
    night = daemon()
    night.walk(at(24, 22, 40), at(24, 23, 15), down=(at(24, 22, 59), at(24, 23, 6)))
    assert [launch.job for launch in night.launched()] == ["run_ingestion"]
    assert night.skips["run_orchestrator_schedule"] == [
        f"run_orchestrator for {SESSION} was due at its tick, 2026-11-24T23:00:00-05:00; evaluated 360 s late, "
        "beyond misfire_grace_time 300 s: not started"
    ]
    # nor does the sensor make up for the missed tick: the upstream had succeeded by then
    assert "the schedule starts it" in night.skips["run_orchestrator_after_upstream"][-1]


@pytest.mark.parametrize(("back", "started"), [(at(25, 0, 4), True), (at(25, 0, 6), False)])
def test_daemon_down_when_a_late_upstream_finishes(daemon, back: dt.datetime, started: bool) -> None:
    """Ingestion ends at 00:00 while the daemon is down; back within 300 s of that, training still starts."""
    night = daemon(minutes={TaskId.INGESTION: 75})
    night.walk(at(24, 22, 40), at(25, 0, 15), down=(at(24, 23, 58), back))
    jobs = [launch.job for launch in night.launched()]
    if started:
        assert night.launched()[1] == Launch("00:04", "run_orchestrator", "run_orchestrator_after_upstream", SESSION)
    else:
        assert jobs == ["run_ingestion"]
    if not started:
        assert (
            f"run_orchestrator for {SESSION} was due when its upstream finished, 2026-11-25T05:00:00+00:00; "
            "evaluated 360 s late, beyond misfire_grace_time 300 s: not started"
        ) in night.skips["run_orchestrator_after_upstream"]


def test_a_disabled_task_starts_stopped_and_its_ticks_request_nothing(daemon) -> None:
    night = daemon(patches={"scheduled_tasks.1.enabled": False})
    defs = night.defs
    assert defs.resolve_schedule_def("run_orchestrator_schedule").default_status == dg.DefaultScheduleStatus.STOPPED
    assert defs.resolve_sensor_def("run_orchestrator_after_upstream").default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_sensor_def("run_overnight_scanner_after_upstream").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )
    night.walk(at(24, 22, 40), at(24, 23, 40))  # evaluated anyway, as if someone switched them on
    assert [launch.job for launch in night.launched()] == ["run_ingestion"]
    assert set(night.skips["run_orchestrator_schedule"]) == {"task 2 (run_orchestrator) is disabled in the config"}
    assert set(night.skips["run_orchestrator_after_upstream"]) >= {
        "task 2 (run_orchestrator) is disabled in the config"
    }
    assert waiting_reason(night.instance, night.settings, TaskId.OVERNIGHT_SCANNER, SESSION) == (
        f"run_overnight_scanner for {SESSION} waits on run_orchestrator (no run)"
    )


def test_two_evaluations_never_request_two_runs_for_one_session(daemon, monkeypatch) -> None:
    night = daemon(minutes={TaskId.INGESTION: 75})
    # ingestion ends at 00:00, when the daemon misses one evaluation; the sensor is then evaluated by hand
    night.walk(at(24, 22, 40), at(25, 0, 0), down=(at(25, 0, 0), at(25, 0, 1)))
    monkeypatch.setattr(schedules, "clock", lambda: at(25, 0, 0, 30))
    sensor = night.defs.resolve_sensor_def("run_orchestrator_after_upstream")
    repo = night.defs.get_repository_def()
    first = evaluate_sensor(sensor, night.instance, repo)
    assert [r.run_key for r in first.run_requests] == [f"run_orchestrator:{SESSION}"]
    # the cursor carried: nothing, even before the run exists
    again = evaluate_sensor(sensor, night.instance, repo, first.cursor)
    assert again.run_requests == []
    # no cursor at all, once the night's run exists (launched by the walk): still nothing
    night.walk(at(25, 0, 1), at(25, 0, 5))
    fresh = evaluate_sensor(sensor, night.instance, repo)
    assert fresh.run_requests == []
    assert fresh.skip_message.startswith(f"run_orchestrator for {SESSION} was already started by automation (run ")


def test_each_dependent_task_has_its_schedule_and_an_after_upstream_sensor(settings_with) -> None:
    cfg = settings_with()
    defs = build_definitions(cfg)
    for task_id in DEPENDENCIES:
        task = cfg.task(task_id)
        schedule = defs.resolve_schedule_def(f"{task.function_name}_schedule")
        assert (schedule.cron_schedule, schedule.execution_timezone) == (task.schedule.cron, "America/New_York")
        assert schedule.job_name == task.function_name
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        sensor = defs.resolve_sensor_def(f"{task.function_name}_after_upstream")
        assert sensor.job_name == task.function_name
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    for task_id, key in FINAL_ASSETS.items():
        assert key in defs.resolve_job_def(task_id.function_name).asset_layer.selected_asset_keys, task_id


def test_an_upstream_materialised_from_the_ui_counts_as_its_tasks_run(settings_with, instance, monkeypatch) -> None:
    defs = build_definitions(settings_with())
    job = defs.resolve_implicit_global_asset_job_def()
    layer = defs.resolve_job_def("run_ingestion").asset_layer.selected_asset_keys  # Task 1: market data and features
    run = instance.create_run_for_job(job_def=job, asset_selection=layer, tags={"dagster/partition": SESSION})
    run_event(instance, run, DagsterEventType.RUN_START, at(24, 22, 30))
    run_event(instance, run, DagsterEventType.RUN_SUCCESS, at(24, 22, 50))
    monkeypatch.setattr(schedules, "clock", lambda: at(24, 23, 0, 5))
    schedule = defs.resolve_schedule_def("run_orchestrator_schedule")
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=at(24, 23)) as context:
        request = schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert (request.partition_key, request.run_key) == (SESSION, f"run_orchestrator:{SESSION}")


def test_waiting_reason_for_the_tasks_without_upstream(settings_with, instance) -> None:
    cfg = settings_with()
    assert waiting_reason(instance, cfg, TaskId.INGESTION, SESSION) is None
    assert waiting_reason(instance, cfg, TaskId.WEEKLY_MAINTENANCE, SESSION) is None


@pytest.mark.parametrize(
    ("task", "now", "session"),
    [
        (TaskId.ORCHESTRATOR, at(24, 22, 59), "2026-11-23"),  # before Tuesday's 23:00 tick: Monday's
        (TaskId.ORCHESTRATOR, at(24, 23, 0), SESSION),
        (TaskId.DRIFT_MONITOR, at(25, 0, 31), SESSION),  # the 00:30 tick works on the evening before
        (TaskId.ORCHESTRATOR, at(26, 23, 30), None),  # Thanksgiving
    ],
)
def test_latest_session(settings_with, task: TaskId, now: dt.datetime, session: str | None) -> None:
    assert latest_session(settings_with(), task, now) == session
