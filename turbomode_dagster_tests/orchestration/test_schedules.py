"""Schedules from the config, evaluated with a frozen clock; retry policy and run tags from the seed's task."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from turbomode_dagster.config import TaskId, load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration import schedules
from turbomode_dagster.orchestration.retries import retry_policy_for, run_tags_for
from turbomode_dagster_tests.conftest import SMALL_PATCHES

NY = ZoneInfo("America/New_York")
SCHEDULE = "run_ingestion_schedule"


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)


@pytest.fixture
def build(make_config, home):
    """Definitions for the small config with extra patches."""

    def make(**patches: object) -> dg.Definitions:
        return build_definitions(load_settings(make_config({**SMALL_PATCHES, **patches})))

    return make


@pytest.fixture
def defs(build) -> dg.Definitions:
    return build()


def tick(
    defs: dg.Definitions, when: dt.datetime, monkeypatch: pytest.MonkeyPatch, late: float = 5
) -> dg.RunRequest | dg.SkipReason:
    """Evaluate the ingestion schedule's tick at `when`, as the daemon would `late` seconds after it."""
    monkeypatch.setattr(schedules, "clock", lambda: when.astimezone(dt.timezone.utc) + dt.timedelta(seconds=late))
    schedule = defs.resolve_schedule_def(SCHEDULE)
    return schedule(dg.build_schedule_context(scheduled_execution_time=when))


def test_the_ingestion_schedule_is_2245_new_york_every_day(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert schedule.cron_schedule == "45 22 * * *"
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.job_name == "run_ingestion"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_a_trading_day_tick_requests_that_days_partition(defs, monkeypatch) -> None:
    request = tick(defs, at(2026, 11, 25, 22, 45), monkeypatch)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-11-25"
    assert request.run_key == "run_ingestion:2026-11-25"


def test_the_tick_resolves_to_an_existing_partition_of_the_job(defs, monkeypatch) -> None:
    when = at(2026, 11, 25, 22, 45)
    monkeypatch.setattr(schedules, "clock", lambda: when + dt.timedelta(seconds=5))
    schedule = defs.resolve_schedule_def(SCHEDULE)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            scheduled_execution_time=when, repository_def=defs.get_repository_def(), instance=instance
        ) as context,
    ):  # closed, or the context's instance leaves Dagster's state storage set for later tests
        data = schedule.evaluate_tick(context)
    (request,) = data.run_requests
    assert request.tags["dagster/partition"] == "2026-11-25"
    assert request.run_key == "run_ingestion:2026-11-25"


@pytest.mark.parametrize(
    "when",
    [
        at(2026, 11, 26, 22, 45),  # Thanksgiving
        at(2026, 11, 28, 22, 45),  # Saturday
        at(2026, 11, 29, 22, 45),  # Sunday
    ],
)
def test_a_tick_on_a_day_without_a_session_is_skipped(defs, monkeypatch, when: dt.datetime) -> None:
    result = tick(defs, when, monkeypatch)
    assert isinstance(result, dg.SkipReason)
    assert "no NYSE session" in result.skip_message


def test_a_late_tick_is_skipped_beyond_the_misfire_grace_time(defs, monkeypatch) -> None:
    when = at(2026, 11, 25, 22, 45)
    assert isinstance(tick(defs, when, monkeypatch, late=299), dg.RunRequest)
    late = tick(defs, when, monkeypatch, late=301)
    assert isinstance(late, dg.SkipReason)
    assert "misfire_grace_time 300" in late.skip_message


def test_the_grace_time_comes_from_the_config(build, monkeypatch) -> None:
    defs = build(**{"global_settings.job_defaults.misfire_grace_time": 3600})
    assert isinstance(tick(defs, at(2026, 11, 25, 22, 45), monkeypatch, late=1800), dg.RunRequest)


def test_a_disabled_task_requests_nothing_and_starts_stopped(build, monkeypatch) -> None:
    defs = build(**{"scheduled_tasks.0.enabled": False})
    assert defs.resolve_schedule_def(SCHEDULE).default_status == dg.DefaultScheduleStatus.STOPPED
    result = tick(defs, at(2026, 11, 25, 22, 45), monkeypatch)
    assert isinstance(result, dg.SkipReason)
    assert "disabled" in result.skip_message


def test_the_cron_follows_the_config(build) -> None:
    defs = build(**{"scheduled_tasks.0.schedule": {"hour": 21, "minute": 5, "day_of_week": "mon-fri"}})
    assert defs.resolve_schedule_def(SCHEDULE).cron_schedule == "5 21 * * 1,2,3,4,5"


@pytest.mark.parametrize(
    ("when", "session"),
    [
        (at(2026, 11, 25, 22, 45), "2026-11-25"),
        (at(2026, 11, 26, 0, 30), "2026-11-25"),  # after midnight: the previous day's session
        (at(2026, 11, 25, 12, 0), "2026-11-24"),  # before the close: the previous day's
        (at(2026, 11, 27, 0, 0), None),  # after Thanksgiving midnight: no session that day
        (dt.datetime(2026, 11, 26, 3, 45, tzinfo=dt.timezone.utc), "2026-11-25"),  # 22:45 New York in UTC
    ],
)
def test_target_session(when: dt.datetime, session: str | None) -> None:
    assert schedules.target_session(when) == session


def test_the_market_data_asset_retries_as_the_config_says(defs: dg.Definitions) -> None:
    policy = defs.resolve_assets_def("daily_bars").op.retry_policy
    assert policy is not None
    assert policy.max_retries == 3
    assert policy.backoff == dg.Backoff.EXPONENTIAL
    assert policy.delay == 30


def test_no_retry_policy_when_the_task_does_not_retry(small_settings) -> None:
    assert retry_policy_for(small_settings.task(TaskId.ORCHESTRATOR)) is None
    assert retry_policy_for(small_settings.task(TaskId.OVERNIGHT_SCANNER)).max_retries == 2


def test_run_ingestion_carries_its_timeout_as_max_runtime(defs: dg.Definitions, small_settings) -> None:
    tags = defs.resolve_job_def("run_ingestion").tags
    assert tags["dagster/max_runtime"] == "1800"
    assert tags["turbomode/task"] == "run_ingestion"
    assert run_tags_for(small_settings.task(TaskId.ORCHESTRATOR))["dagster/max_runtime"] == "7200"
