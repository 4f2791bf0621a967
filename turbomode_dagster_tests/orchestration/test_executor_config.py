"""compute.executor: what the config accepts, the executor each task job gets, and the Dask scheduler's address."""

from __future__ import annotations

import sys

import dagster as dg
import pytest

from turbomode_dagster.config import ConfigError, TaskId, load_settings, parse_settings, settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.executors import executor_for
from turbomode_dagster.orchestration.jobs import TASK_GROUPS
from turbomode_dagster.orchestration.launch import execute_attached
from turbomode_dagster_tests.conftest import SMALL_PATCHES, patch_config, shipped_config

ADDRESS = "tcp://10.0.0.5:8786"


def compute(**keys: object) -> dict:
    return patch_config(shipped_config(), {**SMALL_PATCHES, **{f"compute.{k}": v for k, v in keys.items()}})


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, "test.json")
    return caught.value.problems


def resolved(executor: dg.ExecutorDefinition) -> dict:
    """The executor's config as a run with no executor config of its own resolves it."""
    result = executor.config_schema.resolve_config({})
    assert result.success, result.errors
    return result.value["config"]


def executors_of(raw: dict) -> dict[str, str]:
    defs = build_definitions(parse_settings(raw))
    dg.Definitions.validate_loadable(defs)  # what `dagster definitions validate` checks
    return {task.function_name: defs.resolve_job_def(task.function_name).executor_def.name for task in TASK_GROUPS}


def test_by_default_every_job_keeps_dagsters_default_executor() -> None:
    assert parse_settings(shipped_config()).compute.executor == "default"
    assert set(executors_of(compute()).values()) == {"multi_or_in_process_executor"}


@pytest.mark.parametrize(
    ("keys", "name"),
    [
        ({"executor": "in_process"}, "in_process"),
        ({"executor": "multiprocess"}, "multiprocess"),
        ({"executor": "dask", "dask_scheduler": ADDRESS}, "dask"),
    ],
)
def test_every_task_job_gets_the_configured_executor(keys: dict, name: str) -> None:
    assert executors_of(compute(**keys)) == {task.function_name: name for task in TaskId}


def test_max_concurrent_is_the_multiprocess_executors_limit() -> None:
    limited = executor_for(parse_settings(compute(executor="multiprocess", max_concurrent=3)).compute)
    unlimited = executor_for(parse_settings(compute(executor="multiprocess")).compute)
    assert resolved(limited)["max_concurrent"] == 3
    assert resolved(unlimited)["max_concurrent"] is None  # Dagster's default: one step per CPU


def test_the_dask_executor_connects_to_the_configured_scheduler() -> None:
    executor = executor_for(parse_settings(compute(executor="dask", dask_scheduler=ADDRESS)).compute)
    assert resolved(executor) == {"address": ADDRESS}


def test_dask_without_a_scheduler_address_is_refused_naming_both_places() -> None:
    (problem,) = problems_of(compute(executor="dask"))
    assert problem.startswith("compute: executor 'dask' needs a scheduler address")
    assert "compute.dask_scheduler or TURBOMODE_DASK_SCHEDULER" in problem


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({"executor": "dask", "dask_scheduler": "10.0.0.5:8786"}, "compute.dask_scheduler"),  # no scheme
        ({"executor": "dask", "dask_scheduler": "tcp://host:8786/path"}, "compute.dask_scheduler"),
        ({"executor": "threads"}, "compute.executor"),
        ({"executor": "multiprocess", "max_concurrent": 0}, "compute.max_concurrent"),
        ({"executor": "multiprocess", "max_concurrent": True}, "compute.max_concurrent"),
    ],
)
def test_a_bad_executor_key_is_named(keys: dict, field: str) -> None:
    assert any(p.startswith(f"{field}:") for p in problems_of(compute(**keys)))


def test_the_environment_gives_the_scheduler_address(make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config({**SMALL_PATCHES, "compute.executor": "dask", "compute.dask_scheduler": "tcp://old:1"})
    monkeypatch.setenv("TURBOMODE_CONFIG", str(config))
    monkeypatch.setenv("TURBOMODE_DASK_SCHEDULER", f" {ADDRESS} ")
    assert load_settings(config).compute.dask_scheduler == ADDRESS
    assert settings().compute.dask_scheduler == ADDRESS
    monkeypatch.setenv("TURBOMODE_DASK_SCHEDULER", "tcp://new:2")
    assert settings().compute.dask_scheduler == "tcp://new:2"  # the cached settings follow the variable


def test_dask_without_the_extra_installed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("dagster_dask", "dagster_dask.executor"):  # what an environment without the extra gives
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, "turbomode_dagster.orchestration.dask_executor", raising=False)
    with pytest.raises(ConfigError, match=r"compute.executor: 'dask' needs the dask extra \(pip install"):
        build_definitions(parse_settings(compute(executor="dask", dask_scheduler=ADDRESS)))


def test_a_job_whose_executor_the_code_location_does_not_share_is_refused_before_any_run() -> None:
    # The loaded code location (the shipped config: Dagster's default executor) is what step processes rebuild.
    job = build_definitions(parse_settings(compute(executor="multiprocess"))).resolve_job_def("run_ingestion")
    with dg.instance_for_test() as instance:
        with pytest.raises(dg.DagsterInvariantViolationError, match="run_ingestion is on the multiprocess executor"):
            execute_attached(instance, job, "2026-11-25")
        assert instance.get_runs() == []
