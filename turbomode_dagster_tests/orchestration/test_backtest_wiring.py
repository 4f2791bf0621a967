"""Task 4's wiring: the backtest_report asset, job run_backtest_generator and its midnight schedule."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration import schedules
from turbomode_dagster_tests.conftest import SMALL_PATCHES
from turbomode_dagster_tests.orchestration.nightwalk import plant_run

NY = ZoneInfo("America/New_York")
SCHEDULE = "run_backtest_generator_schedule"


@pytest.fixture
def defs(make_config, home) -> dg.Definitions:
    return build_definitions(load_settings(make_config(SMALL_PATCHES)))


def test_the_asset_is_partitioned_grouped_described_and_reads_the_out_of_fold_predictions(defs):
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey("backtest_report"))
    assert spec.group_name == "backtests"
    assert spec.kinds == {"pandas", "sqlite"}
    assert "out-of-fold" in spec.description and "backtest_trades" in spec.description
    assert {d.asset_key for d in spec.deps} == {
        dg.AssetKey("oof_predictions"),
        dg.AssetKey("trained_ensemble"),
        dg.AssetKey("adjusted_prices"),
    }
    assert spec.partitions_def is not None


def test_the_job_runs_only_the_backtest_with_the_tasks_timeout(defs):
    job = defs.resolve_job_def("run_backtest_generator")
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey("backtest_report")}
    assert job.partitions_def is not None
    assert job.tags["dagster/max_runtime"] == str(90 * 60)
    assert "Task 4" in job.description


def test_the_midnight_tick_targets_the_session_that_closed_the_evening_before(defs, monkeypatch):
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 0 * * *", "America/New_York")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    when = dt.datetime(2026, 11, 26, 0, 0, tzinfo=NY)  # Thanksgiving midnight: Wednesday's session
    monkeypatch.setattr(schedules, "clock", lambda: when.astimezone(dt.timezone.utc) + dt.timedelta(seconds=5))
    evening = dt.datetime(2026, 11, 25, 22, 45, tzinfo=NY)
    with dg.instance_for_test() as instance:
        plant_run(instance, defs, "run_ingestion", "2026-11-25", evening, evening + dt.timedelta(minutes=10))
        with dg.build_schedule_context(scheduled_execution_time=when, instance=instance) as context:
            waiting = schedule(context)
        assert isinstance(waiting, dg.SkipReason)
        assert waiting.skip_message == "run_backtest_generator for 2026-11-25 waits on run_orchestrator (no run)"
        plant_run(instance, defs, "run_orchestrator", "2026-11-25", evening, evening + dt.timedelta(minutes=30))
        with dg.build_schedule_context(scheduled_execution_time=when, instance=instance) as context:
            ready = schedule(context)
    assert isinstance(ready, dg.RunRequest)
    assert (ready.partition_key, ready.run_key) == ("2026-11-25", "run_backtest_generator:2026-11-25")


def test_the_midnight_after_a_day_without_a_session_is_skipped(defs, monkeypatch):
    when = dt.datetime(2026, 11, 29, 0, 0, tzinfo=NY)  # Sunday midnight: Saturday had no session
    monkeypatch.setattr(schedules, "clock", lambda: when.astimezone(dt.timezone.utc) + dt.timedelta(seconds=5))
    result = defs.resolve_schedule_def(SCHEDULE)(dg.build_schedule_context(scheduled_execution_time=when))
    assert isinstance(result, dg.SkipReason) and "no NYSE session" in result.skip_message
