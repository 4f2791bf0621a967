"""Task 6's wiring: its job and Sunday schedule from the config, and the one pool every database writer shares."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration import schedules
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster_tests.conftest import SMALL_PATCHES

NY = ZoneInfo("America/New_York")
SCHEDULE = "run_weekly_maintenance_schedule"
# Every asset that writes the Master DB or TurboMode.db (and maintenance, which vacuums both).
DATABASE_WRITERS = {
    "market_data",  # Master DB
    "model_training",  # registry, training runs, SHAP logs, drift baselines
    "overnight_signals",  # predictions, signals
    "backtest_report",  # backtest tables
    "drift_report",  # drift log, retraining flags
    "weekly_maintenance",  # integrity_check, checkpoint, VACUUM of both
}


@pytest.fixture
def build(make_config, home):
    def make(**patches: object) -> dg.Definitions:
        return build_definitions(load_settings(make_config({**SMALL_PATCHES, **patches})))

    return make


def _tick(defs: dg.Definitions, when: dt.datetime, monkeypatch: pytest.MonkeyPatch, late: float = 5):
    monkeypatch.setattr(schedules, "clock", lambda: when.astimezone(dt.timezone.utc) + dt.timedelta(seconds=late))
    return defs.resolve_schedule_def(SCHEDULE)(dg.build_schedule_context(scheduled_execution_time=when))


@pytest.mark.parametrize("learner_steps", [False, True])
def test_every_database_writer_and_only_they_share_the_write_pool(build, learner_steps: bool) -> None:
    """Every op of every asset, a graph asset's too: with learner steps the stacking step writes, the fit
    steps (which hold a slot only to record a failure) do not."""
    pooled = {
        op_def.name
        for assets_def in build(**{"models.learner_steps": learner_steps}).resolve_asset_graph().assets_defs
        if assets_def.is_executable
        for op_def in assets_def.node_def.iterate_op_defs()
        if op_def.pool == DATABASE_WRITE_POOL
    }
    expected = DATABASE_WRITERS - {"model_training"} | {"stack_ensemble"} if learner_steps else DATABASE_WRITERS
    assert pooled == expected


def test_the_job_materialises_the_maintenance_asset_with_the_tasks_timeout(build) -> None:
    job = build().resolve_job_def("run_weekly_maintenance")
    assert job.tags["dagster/max_runtime"] == str(30 * 60) and job.tags["turbomode/task"] == "run_weekly_maintenance"
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {"weekly_maintenance"}
    assert job.partitions_def is None


def test_the_schedule_is_sunday_0200_new_york_and_requests_one_run_per_tick(build, monkeypatch) -> None:
    defs = build()
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * 0", "America/New_York")
    assert schedule.job_name == "run_weekly_maintenance"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    request = _tick(defs, dt.datetime(2026, 12, 6, 2, 0, tzinfo=NY), monkeypatch)
    assert isinstance(request, dg.RunRequest) and request.partition_key is None
    assert request.run_key == "run_weekly_maintenance:2026-12-06T02:00:00-05:00"


def test_a_tick_beyond_the_misfire_grace_time_is_skipped_with_the_reason(build, monkeypatch) -> None:
    defs = build()
    when = dt.datetime(2026, 12, 6, 2, 0, tzinfo=NY)
    assert isinstance(_tick(defs, when, monkeypatch, late=299), dg.RunRequest)
    skipped = _tick(defs, when, monkeypatch, late=301)
    assert isinstance(skipped, dg.SkipReason) and "beyond misfire_grace_time 300 s" in skipped.skip_message


def test_a_disabled_task_has_a_stopped_schedule_whose_ticks_request_nothing(build, monkeypatch) -> None:
    defs = build(**{"scheduled_tasks.5.enabled": False})
    assert defs.resolve_schedule_def(SCHEDULE).default_status == dg.DefaultScheduleStatus.STOPPED
    skipped = _tick(defs, dt.datetime(2026, 12, 6, 2, 0, tzinfo=NY), monkeypatch)
    assert isinstance(skipped, dg.SkipReason) and "is disabled" in skipped.skip_message


def test_the_schedule_follows_the_config(build) -> None:
    defs = build(**{"scheduled_tasks.5.schedule": {"type": "cron", "hour": 3, "minute": 30, "day_of_week": "sat"}})
    assert defs.resolve_schedule_def(SCHEDULE).cron_schedule == "30 3 * * 6"
