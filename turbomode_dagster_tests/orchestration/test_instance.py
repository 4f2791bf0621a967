"""dagster.yaml rendered from the config: run monitoring, telemetry, run queue and the write pool."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from turbomode_dagster.config import SHIPPED_CONFIG, load_settings
from turbomode_dagster.orchestration.code_location import TurboModeInstance
from turbomode_dagster.orchestration.instance import (
    SHIPPED_INSTANCE_YAML,
    instance_yaml,
    open_instance,
    prepare_dagster_home,
)


def test_the_shipped_dagster_yaml_is_the_rendered_one() -> None:
    assert SHIPPED_INSTANCE_YAML.read_text() == instance_yaml(load_settings(SHIPPED_CONFIG)), (
        "turbomode_dagster/orchestration/dagster.yaml is stale: re-render it with `turbomode dagster-home`"
    )


@pytest.mark.parametrize("max_jobs", [1, 3])
def test_the_instance_enforces_timeouts_and_queues_runs(tmp_path: Path, make_config, max_jobs: int) -> None:
    cfg = load_settings(
        make_config({"global_settings.max_concurrent_jobs": max_jobs, "global_settings.job_defaults.max_instances": 1})
    )
    (tmp_path / "dagster.yaml").write_text(instance_yaml(cfg))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 30
        assert not instance.telemetry_enabled
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == cfg.global_settings.max_concurrent_jobs == max_jobs
        assert queue.tag_concurrency_limits == [
            {"key": "turbomode/task", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    finally:
        instance.dispose()


def test_prepare_dagster_home_renders_under_the_home_or_into_a_bare_dagster_home(
    tmp_path: Path, small_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = prepare_dagster_home(small_settings, tmp_path / "home")
    assert folder == tmp_path / "home" / "dagster_home"
    assert (folder / "dagster.yaml").read_text() == instance_yaml(small_settings)

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(mine))
    assert prepare_dagster_home(small_settings, tmp_path / "home") == mine
    assert (mine / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n", "a user's file is kept"

    bare = tmp_path / "bare"
    monkeypatch.setenv("DAGSTER_HOME", str(bare))
    assert prepare_dagster_home(small_settings, tmp_path / "home") == bare
    assert (bare / "dagster.yaml").read_text() == instance_yaml(small_settings), "one without a file gets ours"


def test_the_rendered_instance_is_turbomodes(tmp_path: Path, small_settings) -> None:
    (tmp_path / "dagster.yaml").write_text(instance_yaml(small_settings))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance) is TurboModeInstance
    finally:
        instance.dispose()


def test_open_instance_is_persistent(tmp_path: Path) -> None:
    folder = tmp_path / "dagster_home"
    instance = open_instance(folder)
    try:
        assert not instance.is_ephemeral
        assert Path(instance.root_directory) == folder
    finally:
        instance.dispose()
