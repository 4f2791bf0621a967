"""The maintenance section: shipped defaults, bounds, and scratch folders that cannot reach the platform's data."""

from __future__ import annotations

import pytest

from turbomode_dagster.config import ConfigError, load_settings, parse_settings
from turbomode_dagster_tests.conftest import patch_config, shipped_config


def problems_of(patches: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(patch_config(shipped_config(), patches))
    return caught.value.problems


def test_the_shipped_maintenance_settings() -> None:
    cfg = load_settings().maintenance
    assert (cfg.log_retention_days, cfg.keep_sessions, cfg.keep_model_versions) == (30, 60, 5)
    assert (cfg.temp_folders, cfg.temp_max_age_hours) == (("tmp",), 24)
    assert cfg.archive_retention_days is None, "archives are the record of old logs: kept unless asked"
    assert cfg.keep_sessions >= load_settings().drift.performance_sessions, "the longest look-back of any task"


def test_a_config_without_the_section_gets_the_defaults() -> None:
    raw = shipped_config()
    del raw["maintenance"]
    assert parse_settings(raw).maintenance == load_settings().maintenance


@pytest.mark.parametrize(
    ("patches", "path"),
    [
        ({"maintenance.log_retention_days": 0}, "maintenance.log_retention_days"),
        ({"maintenance.log_retention_days": True}, "maintenance.log_retention_days"),
        ({"maintenance.archive_retention_days": 0}, "maintenance.archive_retention_days"),
        ({"maintenance.temp_folders": ["datasets"]}, "maintenance.temp_folders"),
        ({"maintenance.keep_sessions": 10**6}, "maintenance.keep_sessions"),
        ({"maintenance.keep_model_versions": 0}, "maintenance.keep_model_versions"),
        ({"maintenance.temp_max_age_hours": 1.5}, "maintenance.temp_max_age_hours"),
        ({"maintenance.temp_folders": ["../outside"]}, "maintenance.temp_folders"),
        ({"maintenance.temp_folders": ["models"]}, "maintenance.temp_folders"),
        ({"maintenance.temp_folders": "tmp"}, "maintenance.temp_folders"),
        ({"maintenance.vacuum": True}, "maintenance.vacuum"),
    ],
)
def test_a_bad_maintenance_value_is_named_by_its_path(patches: dict, path: str) -> None:
    assert [p.split(": ")[0] for p in problems_of(patches)] == [path]


def test_a_scratch_folder_problem_says_why() -> None:
    (problem,) = problems_of({"maintenance.temp_folders": ["tmp", "/var/tmp"]})
    assert "'/var/tmp' must be a folder inside TURBOMODE_HOME" in problem
