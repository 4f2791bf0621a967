"""The code location loads and describes Task 1: assets, checks, job, schedule, and one module for every tool."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import pytest
import yaml

from turbomode_dagster.config import PACKAGE_DIR, SHIPPED_CONFIG, load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10, where pytest brings tomli
    import tomli as tomllib

MARKET_DATA = {"daily_bars", "corporate_actions", "fundamentals", "symbol_metadata"}
REPO = PACKAGE_DIR.parent


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(load_settings(SHIPPED_CONFIG))


def test_definitions_are_loadable(defs: dg.Definitions) -> None:
    dg.Definitions.validate_loadable(defs)


def test_the_module_level_defs_load() -> None:
    from turbomode_dagster import definitions

    dg.Definitions.validate_loadable(definitions.defs)


def test_loading_the_code_location_prints_no_warning(config_file) -> None:
    """Each `turbomode nightly` step and Dagster process loads it: a warning there would repeat on every one."""
    loaded = subprocess.run(
        [sys.executable, "-W", "default", "-c", "import turbomode_dagster.definitions"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0 and loaded.stderr == "", loaded.stderr[-2000:]


def test_market_data_assets_are_grouped_described_and_kinded(defs: dg.Definitions) -> None:
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert set(specs) >= MARKET_DATA
    for name in MARKET_DATA:
        assert specs[name].group_name == "market_data", name
        assert "sqlite" in specs[name].kinds, name
    assert "pandas" in specs["daily_bars"].kinds
    for name, spec in specs.items():
        assert (spec.description or "").strip(), f"{name} has no description"
        assert spec.group_name and spec.group_name != "default", f"{name} has no group"
        assert spec.kinds, f"{name} has no kinds"


def test_market_data_is_one_partitioned_multi_asset_in_the_write_pool(defs: dg.Definitions) -> None:
    assets = defs.resolve_assets_def("daily_bars")
    assert {k.to_user_string() for k in assets.keys} == MARKET_DATA
    assert not assets.can_subset, "all four tables are written in one transaction"
    assert assets.partitions_def is not None
    assert assets.op.pool == DATABASE_WRITE_POOL


def test_the_checks_are_blocking(defs: dg.Definitions) -> None:
    assets = defs.resolve_assets_def("daily_bars")
    checks = {c.name: c for c in assets.check_specs}
    assert set(checks) == {"universe_complete", "no_unexplained_jumps"}
    for check in checks.values():
        assert check.blocking
        assert check.asset_key == dg.AssetKey("daily_bars")
        assert check.description


def test_the_ingestion_job_and_schedule(defs: dg.Definitions) -> None:
    job = defs.resolve_job_def("run_ingestion")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert selected >= MARKET_DATA
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("run_ingestion_schedule")
    assert schedule.job_name == "run_ingestion"
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("45 22 * * *", "America/New_York")
    assert "Task 1" in (job.description or "")


def test_pyproject_and_workspace_point_at_the_same_module() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    assert location["python_module"]["module_name"] == pyproject["module_name"] == "turbomode_dagster.definitions"
    assert location["python_module"]["location_name"] == pyproject["code_location_name"]
