"""Schedules from the config, evaluated with a frozen clock; Task 1's tick catches up missing sessions in one
run; retry policy and run tags from the seed's task."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from turbomode_dagster import calendar
from turbomode_dagster.config import TaskId, load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration import schedules
from turbomode_dagster.orchestration.partitions import SESSION_KEYED_ASSETS
from turbomode_dagster.orchestration.retries import retry_policy_for, run_tags_for
from turbomode_dagster_tests.conftest import HISTORY_START, SMALL_PATCHES, trust_the_instance_for_the_home

NY = ZoneInfo("America/New_York")
SCHEDULE = "run_ingestion_schedule"


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)


@pytest.fixture(autouse=True)
def home_holds_what_the_instance_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """These ticks are about the instance's record; the home's own record (test_catch_up) is taken as absent,
    as for a home written before datasets kept one, so the instance alone says what is stored."""
    trust_the_instance_for_the_home(monkeypatch)


@pytest.fixture
def build(make_config, home):
    """Definitions for the small config with extra patches."""

    def make(**patches: object) -> dg.Definitions:
        return build_definitions(load_settings(make_config({**SMALL_PATCHES, **patches})))

    return make


@pytest.fixture
def defs(build) -> dg.Definitions:
    return build()


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def stored(instance: dg.DagsterInstance, sessions: list[str]) -> None:
    """Record every session-keyed asset as materialised for `sessions`, as runs over them would."""
    for key in SESSION_KEYED_ASSETS:
        for session in sessions:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=session))


@pytest.fixture(scope="module")
def stocked():
    """An instance with every session-keyed asset stored up to 2026-11-27: a tick that follows finds a plain night."""
    with dg.instance_for_test() as instance:
        stored(instance, calendar.sessions(HISTORY_START, "2026-11-27"))
        yield instance


@pytest.fixture
def tick(monkeypatch: pytest.MonkeyPatch, stocked: dg.DagsterInstance):
    """tick(defs, when, late=5): the ingestion schedule's tick at `when`, as the daemon would `late` seconds after."""

    def evaluate(defs: dg.Definitions, when: dt.datetime, late: float = 5) -> dg.RunRequest | dg.SkipReason:
        monkeypatch.setattr(schedules, "clock", lambda: when.astimezone(dt.timezone.utc) + dt.timedelta(seconds=late))
        with dg.build_schedule_context(instance=stocked, scheduled_execution_time=when) as context:
            return defs.resolve_schedule_def(SCHEDULE)(context)

    return evaluate


def test_the_ingestion_schedule_is_2245_new_york_every_day(defs: dg.Definitions) -> None:
    schedule = defs.resolve_schedule_def(SCHEDULE)
    assert schedule.cron_schedule == "45 22 * * *"
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.job_name == "run_ingestion"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_a_trading_day_tick_requests_that_days_partition(defs, tick) -> None:
    request = tick(defs, at(2026, 11, 25, 22, 45))
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == "2026-11-25"
    assert request.run_key == "run_ingestion:2026-11-25"


def evaluate(defs: dg.Definitions, instance: dg.DagsterInstance, when: dt.datetime, monkeypatch) -> dg.RunRequest:
    """The tick as the daemon evaluates it (tags resolved against the job's partitions)."""
    monkeypatch.setattr(schedules, "clock", lambda: when + dt.timedelta(seconds=5))
    schedule = defs.resolve_schedule_def(SCHEDULE)
    with dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def(), instance=instance
    ) as context:  # closed, or the context's instance leaves Dagster's state storage set for later tests
        (request,) = schedule.evaluate_tick(context).run_requests
    return request


def test_a_night_with_nothing_missing_requests_its_partition(defs, instance, monkeypatch) -> None:
    stored(instance, calendar.sessions(HISTORY_START, "2026-11-24"))
    request = evaluate(defs, instance, at(2026, 11, 25, 22, 45), monkeypatch)
    assert request.tags["dagster/partition"] == "2026-11-25"
    assert ASSET_PARTITION_RANGE_START_TAG not in request.tags
    assert request.run_key == "run_ingestion:2026-11-25"


def test_a_fresh_instance_requests_one_run_over_the_whole_history(defs, instance, monkeypatch) -> None:
    request = evaluate(defs, instance, at(2026, 11, 25, 22, 45), monkeypatch)
    assert request.partition_key_range == dg.PartitionKeyRange(HISTORY_START, "2026-11-25")
    assert "dagster/partition" not in request.tags, "Dagster refuses a run with both"
    assert request.run_key == "run_ingestion:2026-11-25"


def test_a_gap_is_caught_up_from_its_first_missing_session(defs, instance, monkeypatch) -> None:
    sessions = calendar.sessions(HISTORY_START, "2026-11-24")
    stored(instance, [s for s in sessions if s not in ("2026-11-18", "2026-11-20")])
    instance.report_runless_asset_event(dg.AssetMaterialization("daily_bars", partition="2026-11-18"))
    request = evaluate(defs, instance, at(2026, 11, 25, 22, 45), monkeypatch)
    # 11-18 has daily_bars but not the other three: still missing; the range starts there.
    assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "2026-11-18",
        "2026-11-25",
    )


@pytest.mark.parametrize(
    "when",
    [
        at(2026, 11, 26, 22, 45),  # Thanksgiving
        at(2026, 11, 28, 22, 45),  # Saturday
        at(2026, 11, 29, 22, 45),  # Sunday
    ],
)
def test_a_tick_on_a_day_without_a_session_is_skipped(defs, tick, when: dt.datetime) -> None:
    result = tick(defs, when)
    assert isinstance(result, dg.SkipReason)
    assert "no NYSE session" in result.skip_message


def test_a_late_tick_is_skipped_beyond_the_misfire_grace_time(defs, tick) -> None:
    when = at(2026, 11, 25, 22, 45)
    assert isinstance(tick(defs, when, late=299), dg.RunRequest)
    late = tick(defs, when, late=301)
    assert isinstance(late, dg.SkipReason)
    assert "misfire_grace_time 300" in late.skip_message


def test_the_grace_time_comes_from_the_config(build, tick) -> None:
    defs = build(**{"global_settings.job_defaults.misfire_grace_time": 3600})
    assert isinstance(tick(defs, at(2026, 11, 25, 22, 45), late=1800), dg.RunRequest)


def test_a_disabled_task_requests_nothing_and_starts_stopped(build, tick) -> None:
    defs = build(**{"scheduled_tasks.0.enabled": False})
    assert defs.resolve_schedule_def(SCHEDULE).default_status == dg.DefaultScheduleStatus.STOPPED
    result = tick(defs, at(2026, 11, 25, 22, 45))
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
