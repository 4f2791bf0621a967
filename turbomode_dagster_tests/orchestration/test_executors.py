"""The nightly's first two tasks on Dagster's multiprocess executor and on Dask give what the in-process run gives.

Each executor gets its own TURBOMODE_HOME and config and runs `turbomode run 1` then `turbomode run 2` for
one session, each as its own command, as production runs them (a process rebuilds the code location from
TURBOMODE_CONFIG; the steps that the executor puts elsewhere rebuild it the same way). The Dask runs connect
to the address of a two-worker `distributed.LocalCluster` started here, the way production connects to an
existing scheduler; its workers are processes (spawned with this test's environment), so the steps really
run outside the command. The multiprocess and Dask runs are made twice: with training as one step, and
with one step per base learner plus the stacking step (`models.learner_steps`). Every Parquet asset file,
every model artifact and the registry's rows must be byte-for-byte or row-for-row those of the
in-process, single-step run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from turbomode_dagster_tests.conftest import ENV_VARS, read_table, write_config

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
TASKS = {"1": "run_ingestion", "2": "run_orchestrator"}
# The registry's columns that say what was trained (created_at and the home's artifact path differ by run).
REGISTRY_COLUMNS = {
    "model_registry": ["model_version", "status", "data_fingerprint", "feature_list", "parameters", "metrics"],
    "shap_logs": ["model_version", "model_name", "class_label", "feature", "mean_abs_shap", "rank"],
}


@dataclass
class Night:
    """One executor's home after the two tasks, and the processes each job's steps ran in."""

    home: Path
    step_pids: dict[str, dict[str, int]]  # job -> step -> pid

    def files(self, folder: str) -> dict[str, bytes]:
        root = self.home / folder
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def night_paths(root: Path) -> tuple[Path, Path]:
    """A night's TURBOMODE_HOME and config file."""
    return root / "home", root / "config.json"


def run_night(root: Path, executor: dict[str, object], learner_steps: bool = False) -> Night:
    """`turbomode run` for tasks 1 and 2 in a fresh home on `executor`; the step pids from its event log."""
    home, config = night_paths(root)
    home.mkdir(parents=True)
    compute = {f"compute.{k}": v for k, v in executor.items()}
    write_config(config, {**PATCHES, **compute, "models.learner_steps": learner_steps})
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(TURBOMODE_HOME=str(home), TURBOMODE_CONFIG=str(config))
    for task in TASKS:
        command = [sys.executable, "-m", "turbomode_dagster.cli", "run", task, "--date", DAY]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"task {task} on {executor}:\n{done.stdout}\n{done.stderr}"
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        pids = {}
        for name in TASKS.values():
            (run,) = instance.get_runs(dg.RunsFilter(job_name=name))
            pids[name] = {
                e.dagster_event.step_key: e.dagster_event.pid
                for e in instance.all_logs(run.run_id)
                if e.dagster_event is not None and e.dagster_event.is_step_success
            }
    return Night(home, pids)


LEARNER_STEPS = ["model_training.fit_hist", "model_training.fit_forest", "model_training.stack_ensemble"]
SPLIT = {"multiprocess": "multiprocess_learner_steps", "dask": "dask_learner_steps"}


@dataclass
class Nights:
    by_executor: dict[str, Night]
    dask_worker_pids: dict[str, set[int]]  # night -> the pids of its cluster's two workers


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    root = tmp_path_factory.mktemp("executors")
    nights = {
        "in_process": run_night(root / "in_process", {"executor": "in_process"}),
        "multiprocess": run_night(root / "multiprocess", {"executor": "multiprocess"}),
        SPLIT["multiprocess"]: run_night(root / SPLIT["multiprocess"], {"executor": "multiprocess"}, True),
    }
    workers = {}
    for name, learner_steps in (("dask", False), (SPLIT["dask"], True)):
        home, config = night_paths(root / name)
        with pytest.MonkeyPatch.context() as monkeypatch:
            # Workers rebuild the code location from the environment they start with: the night's home and
            # config (written once the scheduler's address is known), as production workers share the command's.
            monkeypatch.setenv("TURBOMODE_HOME", str(home))
            monkeypatch.setenv("TURBOMODE_CONFIG", str(config))
            with (
                distributed.LocalCluster(
                    n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cl,
                distributed.Client(cl) as client,
            ):
                workers[name] = set(client.run(os.getpid).values())
                executor = {"executor": "dask", "dask_scheduler": cl.scheduler_address}
                nights[name] = run_night(root / name, executor, learner_steps)
    yield Nights(nights, workers)


def test_each_executor_ran_the_steps_where_it_should(nights: Nights) -> None:
    in_process, multiprocess, dask = (nights.by_executor[k].step_pids for k in ("in_process", "multiprocess", "dask"))
    # Task 1 is the session-keyed layer (market data, then features), Task 2 the models.
    assert list(in_process["run_ingestion"]) == ["market_data", "adjusted_prices", "feature_panel", "training_samples"]
    assert list(in_process["run_orchestrator"]) == ["model_training"]
    # In process: one process (the command's) for every step of a job.
    assert all(len(set(steps.values())) == 1 for steps in in_process.values())
    # Multiprocess: a fresh process per step.
    ingestion = multiprocess["run_ingestion"]
    assert len(set(ingestion.values())) == len(ingestion) == 4
    assert ingestion.keys() == in_process["run_ingestion"].keys()
    orchestrator = multiprocess["run_orchestrator"]
    # Dask: every step on one of the cluster's two worker processes.
    assert len(nights.dask_worker_pids["dask"]) == 2
    assert {pid for steps in dask.values() for pid in steps.values()} <= nights.dask_worker_pids["dask"]
    assert dask["run_orchestrator"].keys() == orchestrator.keys()


def test_with_learner_steps_each_learner_fits_in_its_own_step_and_process(nights: Nights) -> None:
    multiprocess = nights.by_executor[SPLIT["multiprocess"]].step_pids["run_orchestrator"]
    assert sorted(multiprocess) == sorted(LEARNER_STEPS)
    assert len(set(multiprocess.values())) == len(LEARNER_STEPS)
    dask = nights.by_executor[SPLIT["dask"]].step_pids["run_orchestrator"]
    assert sorted(dask) == sorted(LEARNER_STEPS)
    assert set(dask.values()) <= nights.dask_worker_pids[SPLIT["dask"]]
    for name in SPLIT.values():
        # The fits handed from step to step are gone once the stacking step published.
        assert nights.by_executor[name].files("steps") == {}, name
        assert (nights.by_executor[name].home / "steps").is_dir(), name


ALL_RUNS = ["multiprocess", "dask", *SPLIT.values()]


@pytest.mark.parametrize("executor", ALL_RUNS)
def test_every_asset_file_is_byte_identical_to_the_in_process_run(nights: Nights, executor: str) -> None:
    # Per-night assets live under assets/, the session datasets (prices, features, samples) under datasets/.
    for folder, names in {
        "assets": {"trained_ensemble", "oof_predictions"},
        "datasets": {"adjusted_prices", "feature_panel", "training_samples"},
    }.items():
        expected = nights.by_executor["in_process"].files(folder)
        assert names <= {name.split("/")[0] for name in expected}, folder
        assert nights.by_executor[executor].files(folder) == expected, folder


@pytest.mark.parametrize("executor", ALL_RUNS)
def test_the_models_and_registry_are_those_of_the_in_process_run(nights: Nights, executor: str) -> None:
    expected = nights.by_executor["in_process"].files("models")
    assert any(name.endswith(".json") for name in expected)
    assert nights.by_executor[executor].files("models") == expected
    for table, columns in REGISTRY_COLUMNS.items():
        rows = read_table(nights.by_executor["in_process"].home / "turbomode.db", table)[columns]
        assert len(rows)
        pd.testing.assert_frame_equal(
            read_table(nights.by_executor[executor].home / "turbomode.db", table)[columns], rows
        )
