"""The nightly's first two tasks on Dagster's multiprocess executor and on Dask give what the in-process run gives.

Each executor gets its own TURBOMODE_HOME and instance and runs `run_ingestion` then `run_orchestrator`
for one session through `execute_attached`, as `turbomode run` does. The Dask run connects to the address
of a two-worker `distributed.LocalCluster` started here (worker processes, as in production, spawned with
this test's environment), the way production connects to an existing scheduler. Every Parquet asset file,
every model artifact and the registry's rows must be byte-for-byte or row-for-row those of the in-process run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.instance import open_instance, prepare_dagster_home
from turbomode_dagster.orchestration.launch import execute_attached
from turbomode_dagster_tests.conftest import read_table, write_config

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

DAY = "2026-11-25"
LEARNERS = [
    {"name": "hist", "kind": "xgboost", "params": {"n_estimators": 10, "max_depth": 3, "n_jobs": 1}},
    {"name": "forest", "kind": "xgboost", "params": {"n_estimators": 1, "num_parallel_tree": 8, "n_jobs": 1}},
]
PATCHES = {
    "universe.symbols": ["AAPL", "MSFT", "NVDA", "JPM"],
    "history.start_date": "2025-06-02",
    "sources.order": ["sample"],
    "sources.sample.planted_effect": 1.0,
    "models.learners": LEARNERS,
    "models.n_folds": 2,
    "models.shap_rows": 100,
}
TASKS = ("run_ingestion", "run_orchestrator")
# The registry's columns that say what was trained (created_at and the home's artifact path differ by run).
REGISTRY_COLUMNS = {
    "model_registry": ["model_version", "status", "data_fingerprint", "feature_list", "parameters", "metrics"],
    "shap_logs": ["model_version", "model_name", "class_label", "feature", "mean_abs_shap", "rank"],
}


@dataclass
class Night:
    """One executor's home after the two tasks, and which executor each job actually had."""

    home: Path
    executors: dict[str, str]
    step_pids: set[int]

    def files(self, folder: str) -> dict[str, bytes]:
        root = self.home / folder
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_night(root: Path, executor: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> Night:
    home = root / "home"
    home.mkdir(parents=True)
    config = write_config(root / "config.json", {**PATCHES, **{f"compute.{k}": v for k, v in executor.items()}})
    monkeypatch.setenv("TURBOMODE_HOME", str(home))
    monkeypatch.setenv("TURBOMODE_CONFIG", str(config))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = load_settings(config)
    defs = build_definitions(settings)
    executors, pids = {}, set()
    with open_instance(prepare_dagster_home(settings, home)) as instance:
        for name in TASKS:
            job = defs.resolve_job_def(name)
            result = execute_attached(instance, job, DAY)
            assert result.success, f"{name} failed on {executor}"
            executors[name] = job.executor_def.name
            pids |= {e.pid for e in result.all_events if e.is_step_success}
    return Night(home, executors, pids)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Night]]:
    root = tmp_path_factory.mktemp("executors")
    with pytest.MonkeyPatch.context() as monkeypatch:
        nights = {
            "in_process": run_night(root / "in_process", {"executor": "in_process"}, monkeypatch),
            "multiprocess": run_night(root / "multiprocess", {"executor": "multiprocess"}, monkeypatch),
        }
        # Workers are spawned with the environment as it is now: the Dask night's home and config.
        monkeypatch.setenv("TURBOMODE_HOME", str(root / "dask" / "home"))
        monkeypatch.setenv("TURBOMODE_CONFIG", str(root / "dask" / "config.json"))
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
            nights["dask"] = run_night(
                root / "dask", {"executor": "dask", "dask_scheduler": cl.scheduler_address}, monkeypatch
            )
        yield nights


@pytest.mark.parametrize("executor", ["multiprocess", "dask"])
def test_steps_ran_on_the_configured_executor_in_other_processes(nights: dict[str, Night], executor: str) -> None:
    assert nights["in_process"].executors == dict.fromkeys(TASKS, "in_process")
    assert nights[executor].executors == dict.fromkeys(TASKS, executor)
    assert os.getpid() not in nights[executor].step_pids
    assert len(nights[executor].step_pids) >= 2  # a process per step (multiprocess) or two workers (Dask)


@pytest.mark.parametrize("executor", ["multiprocess", "dask"])
def test_every_asset_file_is_byte_identical_to_the_in_process_run(nights: dict[str, Night], executor: str) -> None:
    expected = nights["in_process"].files("assets")
    assert {"feature_panel", "training_samples", "trained_ensemble", "oof_predictions"} <= {
        name.split("/")[0] for name in expected
    }
    assert nights[executor].files("assets") == expected


@pytest.mark.parametrize("executor", ["multiprocess", "dask"])
def test_the_models_and_registry_are_those_of_the_in_process_run(nights: dict[str, Night], executor: str) -> None:
    expected = nights["in_process"].files("models")
    assert any(name.endswith(".json") for name in expected)
    assert nights[executor].files("models") == expected
    for table, columns in REGISTRY_COLUMNS.items():
        rows = read_table(nights["in_process"].home / "turbomode.db", table)[columns]
        assert len(rows)
        pd.testing.assert_frame_equal(read_table(nights[executor].home / "turbomode.db", table)[columns], rows)
