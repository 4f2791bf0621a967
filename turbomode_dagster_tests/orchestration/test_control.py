"""`turbomode start` / `stop` on a real instance, and runs attached to the code location as the UI needs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import InstigatorStatus
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

from turbomode_dagster.config import load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.code_location import (
    LOCATION_NAME,
    TurboModeInstance,
    job_code_origin,
    job_origin,
)
from turbomode_dagster.orchestration.control import RUNNING, STOPPED, state_of, switch_all, turbomode_repository
from turbomode_dagster.orchestration.instance import instance_yaml
from turbomode_dagster.orchestration.launch import execute_attached
from turbomode_dagster_tests.conftest import DAY, SMALL_PATCHES

UI_LABEL = "__repository__@turbomode"  # what the UI filters a job's runs by


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def test_stop_then_start_flips_every_schedule_and_sensor(instance) -> None:
    with turbomode_repository(instance) as repository:
        names = {s.name for s in [*repository.get_schedules(), *repository.get_sensors()]}
        assert {"run_ingestion_schedule", "retrain_on_drift", "record_run_failures"} <= names
        stopped = switch_all(instance, repository, on=False)
        assert {s.name for s in stopped} == names
        assert all(s.before == RUNNING and s.after == STOPPED and s.changed for s in stopped)
        again = switch_all(instance, repository, on=False)
        assert not any(s.changed for s in again)
    with turbomode_repository(instance) as reloaded:  # what a webserver or daemon loading the location sees
        for instigator in [*reloaded.get_schedules(), *reloaded.get_sensors()]:
            assert state_of(instance, instigator) == STOPPED, instigator.name
            stored = instance.get_instigator_state(instigator.get_remote_origin_id(), instigator.selector_id)
            assert stored is not None and stored.status == InstigatorStatus.STOPPED
        started = switch_all(instance, reloaded, on=True)
        assert all(s.before == STOPPED and s.after == RUNNING for s in started)
        assert {i.name for i in reloaded.get_schedules() if state_of(instance, i) == RUNNING} == {
            s.name for s in reloaded.get_schedules()
        }


def test_the_state_is_keyed_by_the_turbomode_location(instance) -> None:
    with turbomode_repository(instance) as repository:
        schedule = repository.get_schedule("run_ingestion_schedule")
        assert schedule.get_remote_origin().repository_origin.code_location_origin.location_name == LOCATION_NAME
        assert schedule.handle.location_name == LOCATION_NAME


def test_a_run_executed_here_is_listed_under_its_job(instance, home: Path, make_config, monkeypatch) -> None:
    config = make_config({**SMALL_PATCHES, "sources.order": ["sample"]})
    monkeypatch.setenv("TURBOMODE_CONFIG", str(config))
    job = build_definitions(load_settings(config)).resolve_job_def("run_ingestion")
    result = execute_attached(instance, job, DAY)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run.remote_job_origin == job_origin("run_ingestion")
    assert run.job_code_origin == job_code_origin("run_ingestion")
    assert run.tags["dagster/partition"] == DAY
    assert run.tags["turbomode/task"] == "run_ingestion"
    assert run.tags["dagster/max_runtime"] == str(30 * 60)
    # The filter the UI's job page applies to list a job's runs, with the label of the location it loaded.
    with turbomode_repository(instance) as repository:
        label = repository.get_full_job("run_ingestion").get_remote_origin().repository_origin.get_label()
    assert label == UI_LABEL
    listed = instance.get_runs(dg.RunsFilter(job_name="run_ingestion", tags={REPOSITORY_LABEL_TAG: label}))
    assert [r.run_id for r in listed] == [result.run_id]


@pytest.fixture
def turbomode_instance(tmp_path: Path, small_settings):
    folder = tmp_path / "dagster_home_rendered"
    folder.mkdir()
    (folder / "dagster.yaml").write_text(instance_yaml(small_settings))
    with dg.DagsterInstance.from_config(str(folder)) as instance:
        yield instance


def test_the_rendered_instance_attaches_runs_of_turbomode_code(turbomode_instance, small_settings) -> None:
    assert type(turbomode_instance) is TurboModeInstance
    job = build_definitions(small_settings).resolve_job_def("run_ingestion")
    # What `dagster job execute -m turbomode_dagster.definitions` creates: a Python origin, no remote one.
    run = turbomode_instance.create_run_for_job(job_def=job, job_code_origin=job_code_origin(job.name))
    assert run.remote_job_origin == job_origin("run_ingestion")
    listed = turbomode_instance.get_runs(dg.RunsFilter(job_name=job.name, tags={REPOSITORY_LABEL_TAG: UI_LABEL}))
    assert [r.run_id for r in listed] == [run.run_id]


def test_the_rendered_instance_leaves_other_runs_alone(turbomode_instance, small_settings) -> None:
    job = build_definitions(small_settings).resolve_job_def("run_ingestion")
    assert turbomode_instance.create_run_for_job(job_def=job).remote_job_origin is None  # execute_in_process
    other = job_code_origin(job.name)
    pointer = other.repository_origin.code_pointer._replace(module="someone_elses.definitions")
    foreign = other._replace(repository_origin=other.repository_origin._replace(code_pointer=pointer))
    assert turbomode_instance.create_run_for_job(job_def=job, job_code_origin=foreign).remote_job_origin is None
