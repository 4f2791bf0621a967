"""Every task's retries and timeout hold however its run is launched: job, schedule, sensor, or an asset selection."""

from __future__ import annotations

import datetime as dt
import logging

import dagster as dg
import pytest
from dagster._core.definitions.dependency import NodeHandle
from dagster._core.events import DagsterEventType
from dagster._daemon.monitoring.run_monitoring import check_run_timeout

from turbomode_dagster.config import TaskId, load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.retries import TASK_TAG
from turbomode_dagster.orchestration.run_tags import SENSOR_NAME
from turbomode_dagster_tests.conftest import SMALL_PATCHES
from turbomode_dagster_tests.orchestration.nightwalk import evaluate_sensor, run_event

# Distinct numbers per task so a policy or timeout taken from the wrong task shows.
RETRIES = {task: task.value + 1 for task in TaskId}
TIMEOUTS = {task: 10 * task.value + 7 for task in TaskId}
MARKET_DATA = {dg.AssetKey(k) for k in ("daily_bars", "corporate_actions", "fundamentals", "symbol_metadata")}
# The feature steps run in Task 1's job (the session-keyed layer) but keep Task 2's retry policy: deterministic
# compute that the seed does not retry (test_no_retry_policy_on_the_shipped_training_and_backtest pins that).
TASK_2_POLICY = {"feature_panel", "training_samples"}


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    """Definitions from a config where every task retries, each with its own count and timeout."""
    from turbomode_dagster_tests.conftest import write_config

    patches = dict(SMALL_PATCHES)
    for task in TaskId:
        i = task.value - 1
        patches[f"scheduled_tasks.{i}.retry_on_failure"] = True
        patches[f"scheduled_tasks.{i}.max_retries"] = RETRIES[task]
        patches[f"scheduled_tasks.{i}.timeout_minutes"] = TIMEOUTS[task]
    path = write_config(tmp_path_factory.mktemp("config") / "config.json", patches)
    return build_definitions(load_settings(path))


def task_job(defs: dg.Definitions, task: TaskId) -> dg.JobDefinition:
    """The task's job, or a skip while it has none (Task 6's job arrives with the maintenance work)."""
    names = {job.name for job in defs.get_repository_def().get_all_jobs()}
    if task.function_name not in names:
        pytest.skip(f"no job {task.function_name} in the definitions")
    return defs.resolve_job_def(task.function_name)


@pytest.mark.parametrize("task", list(TaskId), ids=lambda t: t.function_name)
def test_every_step_of_a_task_retries_as_its_config_says(defs: dg.Definitions, task: TaskId) -> None:
    job = task_job(defs, task)
    nodes = job.graph.nodes
    assert nodes
    for node in nodes:
        policy = job.get_retry_policy_for_handle(NodeHandle(node.name, None))
        assert policy is not None, f"{node.name} of {task.function_name} has no retry policy"
        expected = RETRIES[TaskId.ORCHESTRATOR] if node.name in TASK_2_POLICY else RETRIES[task]
        assert policy.max_retries == expected, node.name
        assert (policy.delay, policy.backoff, policy.jitter) == (30, dg.Backoff.EXPONENTIAL, dg.Jitter.PLUS_MINUS)


@pytest.mark.parametrize("task", list(TaskId), ids=lambda t: t.function_name)
def test_every_task_job_carries_its_timeout_and_task_tag(defs: dg.Definitions, task: TaskId) -> None:
    tags = task_job(defs, task).tags
    assert tags["dagster/max_runtime"] == str(TIMEOUTS[task] * 60)
    assert tags[TASK_TAG] == task.function_name


def test_no_retry_policy_on_the_shipped_training_and_backtest(make_config, home) -> None:
    """The seed does not retry Tasks 2 and 4 ("manual review required on failure")."""
    shipped = build_definitions(load_settings(make_config(SMALL_PATCHES)))
    for asset in ("feature_panel", "training_samples", "trained_ensemble", "backtest_report"):
        assert shipped.resolve_assets_def(asset).op.retry_policy is None, asset
    assert shipped.resolve_assets_def("overnight_signals").op.retry_policy.max_retries == 2


def asset_run(instance: dg.DagsterInstance, defs: dg.Definitions, selection: set[dg.AssetKey], **kw) -> dg.DagsterRun:
    """A run of the implicit asset job for `selection`, as the UI's Materialize button creates it (no job tags)."""
    job = defs.resolve_implicit_global_asset_job_def()
    return instance.create_run_for_job(
        job_def=job, asset_selection=frozenset(selection), tags={"dagster/partition": "2026-11-24"}, **kw
    )


def tag(instance: dg.DagsterInstance, defs: dg.Definitions) -> dg.SensorResult | dg.SkipReason:
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    return evaluate_sensor(sensor, instance, defs.get_repository_def())


def test_an_asset_selection_run_gets_its_tasks_timeout_and_its_assets_pool(defs: dg.Definitions) -> None:
    assert defs.resolve_sensor_def(SENSOR_NAME).default_status == dg.DefaultSensorStatus.RUNNING
    with dg.instance_for_test() as instance:
        run = asset_run(instance, defs, MARKET_DATA)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.NOT_STARTED
        assert "dagster/max_runtime" not in run.tags  # what Dagster gives such a run by itself
        result = tag(instance, defs)
        tags = instance.get_run_by_id(run.run_id).tags
        assert tags["dagster/max_runtime"] == str(TIMEOUTS[TaskId.INGESTION] * 60)
        assert tags[TASK_TAG] == "run_ingestion"
        assert run.run_id in result.skip_message
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        (step,) = [s for s in plan.steps if s.key == "market_data"]
        assert step.pool == DATABASE_WRITE_POOL


def test_a_run_over_two_tasks_gets_both_budgets(defs: dg.Definitions) -> None:
    with dg.instance_for_test() as instance:
        run = asset_run(
            instance,
            defs,
            {dg.AssetKey("backtest_report"), dg.AssetKey("overnight_signals")},
            status=dg.DagsterRunStatus.STARTED,
        )
        tag(instance, defs)
        tags = instance.get_run_by_id(run.run_id).tags
    expected = (TIMEOUTS[TaskId.OVERNIGHT_SCANNER] + TIMEOUTS[TaskId.BACKTEST_GENERATOR]) * 60
    assert tags["dagster/max_runtime"] == str(expected)
    assert tags[TASK_TAG] == "run_overnight_scanner,run_backtest_generator"


def test_finished_runs_and_job_runs_are_left_as_they_are(defs: dg.Definitions) -> None:
    with dg.instance_for_test() as instance:
        done = asset_run(instance, defs, MARKET_DATA, status=dg.DagsterRunStatus.SUCCESS)
        job = defs.resolve_job_def("run_orchestrator")
        job_run = instance.create_run_for_job(job_def=job, tags={**job.tags, "dagster/max_runtime": "99"})
        result = tag(instance, defs)
        assert result.skip_message == "no untagged asset-selection run"
        assert "dagster/max_runtime" not in instance.get_run_by_id(done.run_id).tags
        assert instance.get_run_by_id(job_run.run_id).tags["dagster/max_runtime"] == "99"


def test_run_monitoring_ends_a_tagged_asset_selection_run_at_its_tasks_timeout(defs: dg.Definitions) -> None:
    """Dagster's own timeout check (what the daemon runs each poll) on a run started past ingestion's budget."""
    started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=TIMEOUTS[TaskId.INGESTION] + 1)
    logger = logging.getLogger("run_monitoring")
    with dg.instance_for_test() as instance:
        run = asset_run(instance, defs, MARKET_DATA)
        run_event(instance, run, DagsterEventType.RUN_START, started)
        (record,) = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
        check_run_timeout(instance, record, logger, 0)  # untagged: no limit at all
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        tag(instance, defs)
        (record,) = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
        check_run_timeout(instance, record, logger, 0)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
