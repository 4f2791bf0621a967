"""A learner `kind` names a classifier of an allow-listed package, checked with its params at validate time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from turbomode_dagster.config import ConfigError, parse_settings
from turbomode_dagster.models.learners import LearnerSpec, build_learner
from turbomode_dagster_tests.conftest import patch_config, shipped_config

EXTRA_TREES = 6  # the shipped config's one scikit-learn learner


def learner_problems(kind: str, params: dict[str, object] | None = None, index: int = EXTRA_TREES) -> list[str]:
    raw = shipped_config()
    raw["models"]["learners"][index]["kind"] = kind
    if params is not None:
        raw["models"]["learners"][index]["params"] = params
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, "test.json")
    return caught.value.problems


@pytest.fixture
def no_process_spawns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way Python starts a process, patched at the OS level to record and refuse."""
    import _posixsubprocess

    spawned: list[str] = []

    def refuse(name: str):
        def spawn(*args: object, **kwargs: object) -> None:
            spawned.append(name)
            raise AssertionError(f"a config started a process through {name}")

        return spawn

    monkeypatch.setattr(_posixsubprocess, "fork_exec", refuse("fork_exec"))
    monkeypatch.setattr(subprocess, "_fork_exec", refuse("fork_exec"))  # subprocess's own reference to it
    for name in ("posix_spawn", "posix_spawnp", "fork", "system", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(name))
    return spawned


def test_subprocess_popen_is_rejected_without_being_called(no_process_spawns: list[str]) -> None:
    problems = learner_problems("subprocess.Popen", {"args": ["touch", "/tmp/pwned"]})
    assert problems == [
        "models.learners[6].kind: 'subprocess.Popen': classifiers may only come from xgboost, sklearn, lightgbm, "
        "catboost, not 'subprocess'"
    ]
    assert no_process_spawns == []


def test_a_module_outside_the_allow_list_is_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "planted_learner.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported')\n"
        "from sklearn.tree import DecisionTreeClassifier as Classifier\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    (problem,) = learner_problems("planted_learner.Classifier")
    assert problem.startswith("models.learners[6].kind: 'planted_learner.Classifier': classifiers may only come from")
    assert not marker.exists()
    assert "planted_learner" not in sys.modules


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("sklearn.ensemble.ExtraTreesRegressor", "is not a classifier"),
        ("sklearn.utils.Bunch", "is not a classifier"),
        ("sklearn.base.clone", "sklearn.base has no class 'clone'"),
        ("sklearn.ensemble._forest.ExtraTreesClassifier", "without _private parts"),
        ("sklearn.no_such_module.Classifier", "cannot import 'sklearn.no_such_module'"),
        ("sklearn.svm.LinearSVC", "not a classifier with predict_proba"),
    ],
)
def test_a_kind_that_is_not_a_usable_classifier_is_rejected(kind: str, message: str) -> None:
    (problem,) = learner_problems(kind, {})
    assert problem.startswith(("models.learners[6].kind: ", "models.learners[6].params: "))
    assert message in problem


@pytest.mark.parametrize(
    ("index", "params", "message"),
    [
        (EXTRA_TREES, {"min_samples_leaf": -3}, "The 'min_samples_leaf' parameter of ExtraTreesClassifier must be"),
        (EXTRA_TREES, {"bogus": 1}, "unexpected keyword argument 'bogus'"),
        (0, {"tree_method": "fast"}, "Invalid Input: 'fast'"),
        (0, {"subsample": 2.0}, "value 2 for Parameter subsample exceed bound [0,1]"),
        (0, {"max_dept": 4}, 'unknown parameter(s) { "max_dept" }'),
        (0, {"n_estimators": -5}, "n_estimators must be an integer in 1..10000, got -5"),  # XGBoost: no tree
        (0, {"n_estimators": 10**9}, "n_estimators must be an integer in 1..10000"),  # validates, never trains
        (1, {"max_bin": 1451865600}, "max_bin must be an integer in 2..4096"),  # 22 GB to check
        (1, {"max_bin": 1e9}, "max_bin must be an integer in 2..4096"),
        (EXTRA_TREES, {"n_estimators": 10**9}, "n_estimators must be an integer in 1..10000"),
        (0, {"colsample_bytree": "x"}, "Invalid Parameter format for colsample_bytree expect float but value='x'"),
        (0, {"max_depth": -1}, "max_depth must be an integer in 0..64, got -1"),
    ],
)
def test_params_are_checked_by_constructing_the_learner(index: int, params: dict, message: str) -> None:
    raw = shipped_config()
    raw["models"]["learners"][index]["params"] = params
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, "test.json")
    (problem,) = caught.value.problems
    assert problem.startswith(f"models.learners[{index}].params: ")
    assert message in problem
    assert "Stack trace" not in problem and "/xgboost/" not in problem


def test_huge_tree_counts_are_checked_without_training_them() -> None:
    raw = shipped_config()
    raw["models"]["learners"][0]["params"].update(n_estimators=10_000, num_parallel_tree=1_000)
    started = time.monotonic()
    parse_settings(raw)
    assert time.monotonic() - started < 5


def test_an_allowed_classifier_with_valid_params_is_accepted() -> None:
    raw = patch_config(shipped_config(), {})
    raw["models"]["learners"][EXTRA_TREES].update(kind="sklearn.linear_model.LogisticRegression", params={"C": 0.5})
    cfg = parse_settings(raw)
    assert cfg.models.learners[EXTRA_TREES].kind == "sklearn.linear_model.LogisticRegression"


def test_build_learner_refuses_a_kind_outside_the_allow_list(no_process_spawns: list[str]) -> None:
    spec = LearnerSpec("evil", "subprocess.Popen", {"args": ["true"]})
    with pytest.raises(ValueError, match=r"learner 'evil': 'subprocess\.Popen': classifiers may only come from"):
        build_learner(spec, seed=0)
    assert no_process_spawns == []


def test_the_spawn_guard_itself_catches_a_process(no_process_spawns: list[str]) -> None:
    with pytest.raises(AssertionError):
        subprocess.run(["true"], check=False)
    assert no_process_spawns == ["fork_exec"]
