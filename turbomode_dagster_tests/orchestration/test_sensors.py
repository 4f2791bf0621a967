"""retrain_on_drift on a real test instance: one flag gives one run, a second look none, a resolved flag none."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.sensors import FLAG_TAG
from turbomode_dagster.storage.drift_log import MONITORING_COLUMNS, DriftLog, flag_id
from turbomode_dagster.storage.turbomode_db import TurboModeDB

DAY = "2026-11-25"


def _raise_flag(home: Path, day: str, version: str = "tm-old") -> None:
    row = dict.fromkeys(MONITORING_COLUMNS, 0.0)
    row.update(as_of_date=day, model_version=version, feature="ret_1d", kind="feature", rows=10, status="alert")
    DriftLog(TurboModeDB.at_home(home)).replace_session(day, pd.DataFrame([row]), "40% of features on alert")


@pytest.fixture
def defs(small_settings) -> dg.Definitions:
    return build_definitions(small_settings)


@pytest.fixture
def sensor(defs: dg.Definitions) -> dg.SensorDefinition:
    return defs.resolve_sensor_def("retrain_on_drift")


def _tick(sensor: dg.SensorDefinition, instance, home: Path, defs: dg.Definitions, cursor: str | None = None):
    resources = {"turbomode": TurboModeHome(home=str(home))}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs) as context:
        return sensor.evaluate_tick(context)


def test_the_sensor_runs_by_default_and_targets_training(sensor) -> None:
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "run_orchestrator"


def test_one_flag_gives_one_run_and_a_second_evaluation_none(sensor, defs, home: Path) -> None:
    _raise_flag(home, DAY)
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, home, defs)
        (request,) = first.run_requests
        assert request.run_key == flag_id(DAY, "tm-old")
        assert request.partition_key == DAY and request.tags[FLAG_TAG] == flag_id(DAY, "tm-old")
        second = _tick(sensor, instance, home, defs, cursor=first.cursor)
        assert second.run_requests == [] and "no open retraining flag" in second.skip_message


def test_a_later_flag_gets_its_own_run(sensor, defs, home: Path) -> None:
    _raise_flag(home, DAY)
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance, home, defs)
        _raise_flag(home, "2026-11-27")
        (request,) = _tick(sensor, instance, home, defs, cursor=first.cursor).run_requests
        assert request.partition_key == "2026-11-27"


def test_a_resolved_flag_gives_no_run(sensor, defs, home: Path) -> None:
    _raise_flag(home, DAY)
    DriftLog(TurboModeDB.at_home(home)).resolve_flags("tm-new")
    with dg.instance_for_test() as instance:
        result = _tick(sensor, instance, home, defs)
        assert result.run_requests == []


def test_no_turbomode_db_yet_is_a_skip(sensor, defs, home: Path) -> None:
    with dg.instance_for_test() as instance:
        assert "nothing has been trained" in _tick(sensor, instance, home, defs).skip_message
