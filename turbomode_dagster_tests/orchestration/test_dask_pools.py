"""The Dask executor honours pool limits: two steps in the database write pool (limit 1) never run at once
on two workers, while the same steps without a pool do (so the check can fail). A step whose upstream
step failed is not started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from turbomode_dagster.config import load_settings
from turbomode_dagster.orchestration.instance import instance_yaml
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster_tests.orchestration import pool_jobs

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A two-worker LocalCluster's scheduler address (workers are processes, one thread each)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        yield cl.scheduler_address


@pytest.fixture
def instance(tmp_path: Path, config_file: Path) -> Iterator[dg.DagsterInstance]:
    """A persistent instance rendered from the config: the database write pool's limit is 1."""
    (tmp_path / "dagster.yaml").write_text(instance_yaml(load_settings(config_file)))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


def run_on(instance: dg.DagsterInstance, job: dg.JobDefinition, address: str) -> dg.ExecuteJobResult:
    """Run `job` on the cluster's workers."""
    run_config = {"execution": {"config": {"address": address}}}
    with dg.execute_job(dg.reconstructable(getattr(pool_jobs, job.name)), instance, run_config=run_config) as result:
        return result


def step_windows(instance: dg.DagsterInstance, job: dg.JobDefinition, address: str) -> list[tuple[float, float]]:
    """Run `job` on the cluster; each step's (start, end) from its STEP_START and STEP_SUCCESS events."""
    result = run_on(instance, job, address)
    assert result.success
    run_id = result.run_id
    times: dict[str, dict[str, float]] = {}
    for entry in instance.all_logs(run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}):
        times.setdefault(entry.step_key, {})[entry.dagster_event.event_type_value] = entry.timestamp
    return sorted((t["STEP_START"], t["STEP_SUCCESS"]) for t in times.values())


def test_steps_of_one_pool_take_turns_on_the_dask_workers(instance, cluster: str) -> None:
    (first, second) = step_windows(instance, pool_jobs.pooled_writers, cluster)
    assert second[0] >= first[1], f"the second writer started {first[1] - second[0]:.2f} s before the first ended"
    assert instance.event_log_storage.get_concurrency_info(DATABASE_WRITE_POOL).active_slot_count == 0


def test_steps_without_a_pool_overlap_on_the_dask_workers(instance, cluster: str) -> None:
    (first, second) = step_windows(instance, pool_jobs.unpooled_writers, cluster)
    assert second[0] < first[1], "two workers ran the steps one after the other: the pooled test proves nothing"


def test_a_step_after_a_failed_step_is_not_started_on_the_dask_workers(instance, cluster: str) -> None:
    result = run_on(instance, pool_jobs.failing_upstream, cluster)
    assert not result.success
    started = {e.step_key for e in instance.all_logs(result.run_id, of_type={DagsterEventType.STEP_START})}
    failed = {e.step_key for e in instance.all_logs(result.run_id, of_type={DagsterEventType.STEP_FAILURE})}
    assert (started, failed) == ({"fails"}, {"fails"})
