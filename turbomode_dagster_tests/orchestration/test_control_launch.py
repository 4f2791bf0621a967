"""`turbomode run`'s task lookup, and runs of any kind of job executed here attached to the code location."""

from __future__ import annotations

import dagster as dg
import pytest

from turbomode_dagster.orchestration.code_location import job_origin
from turbomode_dagster.orchestration.launch import UnknownTask, execute_attached, resolve_task, task_job


def test_a_task_is_named_by_id_or_function_name(small_settings) -> None:
    tasks = small_settings.scheduled_tasks
    assert resolve_task("3", tasks).function_name == "run_overnight_scanner"
    assert resolve_task("run_overnight_scanner", tasks).task_id == 3
    assert resolve_task(" 6 ", tasks).function_name == "run_weekly_maintenance"


@pytest.mark.parametrize("spec", ["nonsense", "0", "7", "", "run_ingestion2", "task_1"])
def test_an_unknown_task_is_refused_naming_the_known_ones(small_settings, spec: str) -> None:
    with pytest.raises(UnknownTask, match=rf"unknown task {spec!r}: use a task id or function name, one of 1 "):
        resolve_task(spec, small_settings.scheduled_tasks)


def test_a_task_without_a_job_is_refused(small_settings) -> None:
    defs = dg.Definitions()
    with pytest.raises(UnknownTask, match=r"task 1 \(run_ingestion\) has no job in the code location"):
        task_job(defs, resolve_task("1", small_settings.scheduled_tasks))


@dg.op
def vacuum() -> int:
    return 1


@dg.job(name="run_weekly_maintenance", executor_def=dg.in_process_executor, tags={"turbomode/task": "x"})
def maintenance() -> None:
    vacuum()


def test_an_unpartitioned_job_with_its_own_executor_runs_attached() -> None:
    with dg.instance_for_test() as instance:
        result = execute_attached(instance, maintenance)
        assert result.success
        run = instance.get_run_by_id(result.run_id)
        assert run.remote_job_origin == job_origin("run_weekly_maintenance")
        assert "dagster/partition" not in run.tags
        assert run.tags["turbomode/task"] == "x"  # the job's own tags, as a launched run gets them
