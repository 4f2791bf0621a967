"""The training and scanner assets, materialised after ingestion and features on the built-in sample market.

One night (2026-11-25, the Wednesday before Thanksgiving) on six symbols from 2024-06-03 with the
sample's planted effect at 1.0, which earns a champion at this size. The module trains once for the
night and once more to prove retraining is idempotent; the reruns (scanner alone, then training
alone) run with the read-write Master DB handle refused.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from turbomode_dagster.config import Settings, load_settings
from turbomode_dagster.features import FEATURE_COLUMNS
from turbomode_dagster.models.registry import MANIFEST, META_FILE, artifact_dir
from turbomode_dagster.orchestration.assets.adjusted_prices import build_adjusted_prices_asset
from turbomode_dagster.orchestration.assets.features import build_feature_assets
from turbomode_dagster.orchestration.assets.market_data import build_market_data_assets
from turbomode_dagster.orchestration.assets.models import build_model_assets
from turbomode_dagster.orchestration.assets.scanner import build_scanner_assets
from turbomode_dagster.orchestration.io_managers import ParquetIOManager, SessionDatasetIOManager
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.orchestration.step_outputs import StepOutputIOManager
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.sample import SampleSource
from turbomode_dagster.storage.market_db import market_db_path
from turbomode_dagster.storage.session_dataset import SessionDataset
from turbomode_dagster.storage.turbomode_db import TurboModeDB, turbomode_db_path
from turbomode_dagster_tests.conftest import dump_tables, read_table, write_config
from turbomode_dagster_tests.master_db_guard import master_db_untouched
from turbomode_dagster_tests.orchestration.assets import training_job
from turbomode_dagster_tests.orchestration.assets.backfill import first_night

DAY = "2026-11-25"
NEXT_SESSION = "2026-11-27"  # Thanksgiving (2026-11-26) is a holiday
SYMBOLS = ["AAPL", "MSFT", "NVDA", "JPM", "XOM", "KO"]
LEARNERS = [
    {"name": "hist", "kind": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}},
    {
        "name": "linear",
        "kind": "xgboost",
        "params": {"booster": "gblinear", "updater": "coord_descent", "n_estimators": 10, "n_jobs": 1},
    },
]
PATCHES = {
    "universe.symbols": SYMBOLS,
    "history.start_date": "2024-06-03",
    "sources.order": ["sample"],
    "sources.sample.planted_effect": 1.0,
    "models.learners": LEARNERS,
    "models.n_folds": 3,
    "models.shap_rows": 200,
}
TRAINING = ["trained_ensemble", "oof_predictions"]


@dataclass
class Night:
    """The home after each step, and what each materialisation returned."""

    home: Path
    settings: Settings
    config: Path
    first: dg.ExecuteInProcessResult
    after_first: dict[str, list[tuple]]
    artifacts_first: dict[str, bytes]
    scan_again: dg.ExecuteInProcessResult
    after_scan_again: dict[str, list[tuple]]
    train_again: dg.ExecuteInProcessResult
    after_train_again: dict[str, list[tuple]]
    artifacts_again: dict[str, bytes]

    @property
    def db(self) -> Path:
        return turbomode_db_path(self.home)


def all_assets(settings: Settings) -> list:
    return [
        build_market_data_assets(settings),
        build_adjusted_prices_asset(settings),
        *build_feature_assets(settings),
        build_model_assets(settings),
        build_scanner_assets(settings),
    ]


def resources(home: Path, config: Path) -> dict:
    turbomode = TurboModeHome(home=str(home), config_file=str(config))
    return {
        "turbomode": turbomode,
        "master_db": MasterDBWriteAccess(turbomode=turbomode),
        "source_chain": SourceChain([SampleSource(seed=7, planted_effect=1.0)]),
        "parquet_io_manager": ParquetIOManager(root=str(home / "assets")),
        "session_dataset_io_manager": SessionDatasetIOManager(root=str(home / "datasets")),
    }


def artifact_bytes(home: Path) -> dict[str, bytes]:
    """Every file under home/models, by relative path."""
    root = home / "models"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    root = tmp_path_factory.mktemp("night")
    home = root / "home"
    home.mkdir()
    config = write_config(root / "config.json", PATCHES)
    settings = load_settings(config)
    assets = all_assets(settings)
    first = first_night(assets, resources(home, config), PATCHES["history.start_date"], DAY)
    after_first, artifacts_first = dump_tables(turbomode_db_path(home)), artifact_bytes(home)
    with master_db_untouched(market_db_path(home)):
        scan_again = dg.materialize(
            assets, resources=resources(home, config), partition_key=DAY, selection=["overnight_signals"]
        )
        after_scan_again = dump_tables(turbomode_db_path(home))
        train_again = dg.materialize(assets, resources=resources(home, config), partition_key=DAY, selection=TRAINING)
    return Night(
        home,
        settings,
        config,
        first,
        after_first,
        artifacts_first,
        scan_again,
        after_scan_again,
        train_again,
        dump_tables(turbomode_db_path(home)),
        artifact_bytes(home),
    )


def raw_metadata(result: dg.ExecuteInProcessResult, node: str, asset: str) -> dict[str, dg.MetadataValue]:
    events = [e for e in result.asset_materializations_for_node(node) if e.asset_key == dg.AssetKey(asset)]
    assert len(events) == 1
    return dict(events[0].metadata)


def metadata(result: dg.ExecuteInProcessResult, node: str, asset: str) -> dict:
    return {k: v.value for k, v in raw_metadata(result, node, asset).items()}


def test_training_registers_one_champion_with_its_record(night):
    registry = read_table(night.db, "model_registry")
    assert len(registry) == 1
    champion = TurboModeDB(night.db).champion()
    assert champion is not None and champion.model_version == registry["model_version"][0]
    assert len(champion.data_fingerprint) == 64 and int(champion.data_fingerprint, 16) >= 0
    assert champion.feature_list == list(FEATURE_COLUMNS)
    assert [learner["name"] for learner in champion.parameters["learners"]] == ["hist", "linear"]
    assert champion.parameters["n_folds"] == 3 and champion.parameters["horizon"] == 5
    assert {"hist", "linear", "ensemble", "always_hold", "class_prior"} <= set(champion.metrics)
    assert champion.metrics["ensemble"]["log_loss"] < champion.metrics["class_prior"]["log_loss"]
    assert champion.promotion_decision["promote"] is True
    meta = metadata(night.first, "model_training", "trained_ensemble")
    assert meta["model_version"] == champion.model_version and meta["status"] == "champion"


def test_training_run_shap_log_and_artifacts_are_recorded(night):
    champion = TurboModeDB(night.db).champion()
    runs = read_table(night.db, "training_runs")
    first = runs[runs["run_id"] == night.first.run_id]
    assert list(first["status"]) == ["succeeded"]
    samples = SessionDataset(night.home / "datasets" / "training_samples", key="label_date").read(end=DAY)
    assert int(first["sample_count"].iloc[0]) == len(samples) > 0
    assert first["model_version"].iloc[0] == champion.model_version
    assert set(json.loads(first["metrics"].iloc[0])) >= {"ensemble", "always_hold", "class_prior"}

    shap = read_table(night.db, "shap_logs")
    assert len(shap) and set(shap["model_version"]) == {champion.model_version}
    assert set(shap["model_name"]) == {"hist", "linear"}
    assert set(shap["class_label"]) == {"SELL", "HOLD", "BUY"}

    directory = artifact_dir(night.home, champion.model_version)
    assert Path(champion.artifact_path) == directory
    for name in (MANIFEST, META_FILE, "base/hist.json", "base/linear.json"):
        assert (directory / name).is_file(), name
    assert json.loads((directory / MANIFEST).read_text())["model_version"] == champion.model_version


def test_oof_predictions_are_stored_per_partition(night):
    oof = pd.read_parquet(night.home / "assets" / "oof_predictions" / f"{DAY}.parquet")
    assert {"hist", "linear", "ensemble"} == set(oof["model"])
    assert list(oof.columns) == ["symbol", "date", "model", "fold", "p_sell", "p_hold", "p_buy"]
    assert set(oof["symbol"]) == set(SYMBOLS)
    assert (night.home / "assets" / "trained_ensemble" / f"{DAY}.parquet").is_file()


def test_the_scan_targets_the_next_session_for_every_symbol(night):
    champion = TurboModeDB(night.db).champion()
    for table in ("predictions", "signals"):
        rows = TurboModeDB(night.db).read_table(table)
        assert sorted(rows["symbol"]) == sorted(SYMBOLS), table
        assert set(rows["as_of_date"]) == {DAY}, table
        assert set(rows["target_date"]) == {NEXT_SESSION}, table
        assert set(rows["model_version"]) == {champion.model_version}, table
    signals = TurboModeDB(night.db).read_table("signals")
    assert set(signals["signal"]) <= {"BUY", "SELL", "HOLD"}
    assert all(len(json.loads(f)) == night.settings.scanner.top_features for f in signals["top_features"])
    meta = metadata(night.first, "overnight_signals", "overnight_signals")
    assert meta["target_date"] == NEXT_SESSION and meta["symbols_scored"] == len(SYMBOLS)


def test_the_model_page_shows_shap_per_class_and_every_learner_and_explains_the_metrics(night):
    meta = metadata(night.first, "model_training", "trained_ensemble")
    by_class = [(r.data["class_label"], r.data["rank"]) for r in meta["shap_by_class"].records]
    assert by_class == [(label, rank) for label in ("BUY", "SELL", "HOLD") for rank in range(1, 11)]
    stored = TurboModeDB(night.db).read_table("shap_logs")
    first_buy = stored[stored["class_label"] == "BUY"].groupby("feature")["mean_abs_shap"].mean().idxmax()
    assert meta["shap_by_class"].records[0].data["feature"] == first_buy
    by_learner = [(r.data["class_label"], r.data["learner"]) for r in meta["shap_by_learner"].records]
    assert by_learner == [(label, name) for label in ("BUY", "SELL", "HOLD") for name in ("hist", "linear")]
    assert re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,[A-Za-z0-9+/=]+\)", meta["shap_picture"])
    assert "**Promotion uses out-of-sample log loss**" in meta["about_the_metrics"]
    models = [r.data["model"] for r in meta["metrics"].records]
    assert models == ["hist", "linear", "ensemble", "always_hold", "class_prior"]
    columns = [c.name for c in meta["metrics_classification"].schema.columns]
    assert columns == ["model", "balanced_accuracy", "macro_f1", "auc_ovr"]
    raw = raw_metadata(night.first, "model_training", "trained_ensemble")
    for key in ("ensemble_log_loss", "ensemble_rank_ic", "ensemble_balanced_accuracy"):
        assert isinstance(raw[key], dg.FloatMetadataValue), key
    ensemble = next(r.data for r in meta["metrics"].records if r.data["model"] == "ensemble")
    assert meta["ensemble_log_loss"] == pytest.approx(ensemble["log_loss"], abs=1e-4)


def test_the_signals_preview_shows_buy_and_sell_first_and_counts_trend(night):
    meta = metadata(night.first, "overnight_signals", "overnight_signals")
    rows = [(r.data["signal"], r.data["confidence"]) for r in meta["preview"].records]
    actionable = [c for signal, c in rows if signal != "HOLD"]
    assert [signal != "HOLD" for signal, _ in rows] == sorted((s != "HOLD" for s, _ in rows), reverse=True)
    assert actionable == sorted(actionable, reverse=True)
    signals = TurboModeDB(night.db).read_table("signals")["signal"].value_counts()
    raw = raw_metadata(night.first, "overnight_signals", "overnight_signals")
    for name in ("BUY", "SELL", "HOLD"):
        assert isinstance(raw[f"signals_{name.lower()}"], dg.IntMetadataValue)
        assert meta[f"signals_{name.lower()}"] == int(signals.get(name, 0))


def test_scanning_again_leaves_the_tables_identical(night):
    assert night.scan_again.success
    assert night.after_scan_again["predictions"]  # not two empty dumps
    assert night.after_scan_again == night.after_first


def test_training_again_on_the_same_inputs_changes_no_model(night):
    assert night.train_again.success
    version = metadata(night.first, "model_training", "trained_ensemble")["model_version"]
    assert metadata(night.train_again, "model_training", "trained_ensemble")["model_version"] == version
    assert night.artifacts_again == night.artifacts_first
    assert any(path.startswith(f"{version}/") for path in night.artifacts_first)
    for table in ("model_registry", "shap_logs", "predictions", "signals"):
        assert night.after_train_again[table] == night.after_first[table], table
    runs = read_table(night.db, "training_runs")
    assert sorted(runs["run_id"]) == sorted([night.first.run_id, night.train_again.run_id])
    assert set(runs["status"]) == {"succeeded"} and set(runs["model_version"]) == {version}


def test_model_and_scanner_assets_never_open_the_master_db_for_writing(night):
    """The reruns above ran under the Master DB guard (sqlite3.connect refuses a read-write open; the
    file's bytes must not change); both succeeded, and they did run."""
    assert night.scan_again.success and night.train_again.success
    assert [e.asset_key for e in night.scan_again.get_asset_materialization_events()] == [
        dg.AssetKey("overnight_signals")
    ]
    materialised = {e.asset_key for e in night.train_again.get_asset_materialization_events()}
    assert materialised == {dg.AssetKey(key) for key in TRAINING}


def test_the_scanner_without_a_champion_fails_once_and_says_so(night, tmp_path):
    """A fresh home: the night's feature panel is there, TurboMode.db has no model. The scanner has a
    retry policy, so 'does not retry' is a property of the failure it raises."""
    home = tmp_path / "fresh"
    panel = home / "datasets" / "feature_panel"
    panel.parent.mkdir(parents=True)
    shutil.copytree(night.home / "datasets" / "feature_panel", panel)
    TurboModeDB.at_home(home).connect_read_write().close()  # migrated, empty
    scanner = build_scanner_assets(night.settings)
    assert scanner.op.retry_policy is not None and scanner.op.retry_policy.max_retries > 0
    result = dg.materialize(
        all_assets(night.settings),
        resources=resources(home, night.config),
        partition_key=DAY,
        selection=["overnight_signals"],
        raise_on_error=False,
    )
    assert not result.success
    failures = result.get_step_failure_events()
    assert len(failures) == 1
    data = failures[0].step_failure_data
    assert "no champion" in data.user_failure_data.description
    assert "no champion" in data.error.message
    assert result.retry_attempts_for_node("overnight_signals") == 0
    kinds = {event.event_type_value for event in result.all_events}
    assert "STEP_UP_FOR_RETRY" not in kinds and "STEP_RESTARTED" not in kinds
    assert TurboModeDB.at_home(home).read_table("predictions").empty
    assert TurboModeDB.at_home(home).read_table("signals").empty


def kill_the_linear_learner(monkeypatch: pytest.MonkeyPatch):
    """Make every gblinear fit die inside XGBoost (as an out-of-memory would); returns the real `fit`."""
    import xgboost

    fit = xgboost.XGBClassifier.fit

    def fit_or_die(self, *args, **kwargs):
        if self.get_params().get("booster") == "gblinear":
            raise MemoryError("simulated: the kernel refused 24 GB")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(xgboost.XGBClassifier, "fit", fit_or_die)
    return fit


def test_a_failed_training_run_is_recorded_and_leaves_the_champion_and_registry_alone(night, tmp_path, monkeypatch):
    """One learner dies inside its library's fit (as an out-of-memory would): the run fails naming the
    learner and fold, training_runs says why, the registry and artifacts are untouched, and the next
    scan still uses the champion."""
    import xgboost

    home = tmp_path / "home"
    shutil.copytree(night.home, home)
    before, artifacts_before = dump_tables(turbomode_db_path(home)), artifact_bytes(home)
    fit = kill_the_linear_learner(monkeypatch)
    failed = dg.materialize(
        all_assets(night.settings),
        resources=resources(home, night.config),
        partition_key=DAY,
        selection=TRAINING,
        raise_on_error=False,
    )
    assert not failed.success
    (failure,) = failed.get_step_failure_events()
    message = failure.step_failure_data.error.cause.message
    assert "learner 'linear' (xgboost) failed in walk-forward fold 0" in message
    assert "MemoryError: simulated" in message

    after = dump_tables(turbomode_db_path(home))
    for table in ("model_registry", "shap_logs", "predictions", "signals"):
        assert after[table] == before[table], table
    assert artifact_bytes(home) == artifacts_before
    runs = read_table(turbomode_db_path(home), "training_runs").set_index("run_id")
    assert runs.loc[failed.run_id, "status"] == "failed"
    assert "learner 'linear'" in runs.loc[failed.run_id, "error"]

    monkeypatch.setattr(xgboost.XGBClassifier, "fit", fit)
    scan = dg.materialize(
        all_assets(night.settings),
        resources=resources(home, night.config),
        partition_key=DAY,
        selection=["overnight_signals"],
    )
    assert scan.success
    assert dump_tables(turbomode_db_path(home))["signals"] == before["signals"]


LEARNER_STEPS = {"model_training.fit_hist", "model_training.fit_linear", "model_training.stack_ensemble"}


def learner_steps_night(night: Night, root: Path) -> tuple[Path, Path, Settings, dict]:
    """A copy of the night's home with `models.learner_steps` on, and its resources (steps under the home)."""
    home = root / "home"
    shutil.copytree(night.home, home)
    config = write_config(root / "config.json", {**PATCHES, "models.learner_steps": True})
    handed_on = {"step_io_manager": StepOutputIOManager(root=str(home / "steps"))}
    return home, config, load_settings(config), {**resources(home, config), **handed_on}


def asset_files(home: Path) -> dict[str, bytes]:
    return {name: (home / "assets" / name / f"{DAY}.parquet").read_bytes() for name in TRAINING}


def test_learner_steps_fit_apart_and_publish_the_same_bytes(night, tmp_path):
    """One step per learner plus the stacking step, in process (each fit handed on as a pickle): the
    same model version, artifacts, registry rows and Parquet files as the single step, and no fits left."""
    home, _, settings, handed_on = learner_steps_night(night, tmp_path)
    with master_db_untouched(market_db_path(home)):
        result = dg.materialize(all_assets(settings), resources=handed_on, partition_key=DAY, selection=TRAINING)
    assert result.success
    assert {event.step_key for event in result.get_step_success_events()} == LEARNER_STEPS
    handed = [e for e in result.all_events if e.is_handled_output and e.step_key == "model_training.fit_hist"]
    assert handed, "the fit went through the step-output IO manager"
    assert artifact_bytes(home) == night.artifacts_again
    assert asset_files(home) == asset_files(night.home)
    after = dump_tables(turbomode_db_path(home))
    for table in ("shap_logs", "predictions", "signals", "drift_baselines"):
        assert after[table] == night.after_train_again[table], table
    registry = read_table(turbomode_db_path(home), "model_registry")
    expected = read_table(night.db, "model_registry")
    assert (registry["artifact_path"] == expected["artifact_path"].str.replace(str(night.home), str(home))).all()
    pd.testing.assert_frame_equal(registry.drop(columns="artifact_path"), expected.drop(columns="artifact_path"))
    runs = read_table(turbomode_db_path(home), "training_runs").set_index("run_id")
    assert runs.loc[result.run_id, "status"] == "succeeded"
    assert list((home / "steps").iterdir()) == []


def test_a_failing_learner_step_is_recorded_and_nothing_is_published(night, tmp_path, monkeypatch):
    """The linear learner's step dies: the run's training is recorded failed naming it, the stacking step
    never runs (registry and artifacts untouched), and the fit that succeeded stays for a re-execution."""
    home, _, settings, handed_on = learner_steps_night(night, tmp_path)
    before, artifacts_before = dump_tables(turbomode_db_path(home)), artifact_bytes(home)
    kill_the_linear_learner(monkeypatch)
    failed = dg.materialize(
        all_assets(settings), resources=handed_on, partition_key=DAY, selection=TRAINING, raise_on_error=False
    )
    assert not failed.success
    (failure,) = failed.get_step_failure_events()
    assert failure.step_key == "model_training.fit_linear"
    started = {event.step_key for event in failed.all_events if event.event_type_value == "STEP_START"}
    assert started == LEARNER_STEPS - {"model_training.stack_ensemble"}
    runs = read_table(turbomode_db_path(home), "training_runs").set_index("run_id")
    assert runs.loc[failed.run_id, "status"] == "failed"
    assert "learner 'linear' (xgboost) failed in walk-forward fold 0" in runs.loc[failed.run_id, "error"]
    after = dump_tables(turbomode_db_path(home))
    for table in ("model_registry", "shap_logs", "predictions", "signals"):
        assert after[table] == before[table], table
    assert artifact_bytes(home) == artifacts_before
    kept = home / "steps" / failed.run_id / "model_training.fit_hist" / "result.pkl"
    assert kept.is_file() and not (home / "steps" / failed.run_id / "model_training.fit_linear").exists()


def test_a_reexecution_from_the_failure_reuses_the_good_fit_and_leaves_no_fits_behind(night, tmp_path, monkeypatch):
    """Task 2's job with learner steps fails in the linear learner; re-executed from the failure it fits
    only that learner, stacks with the first run's hist fit (the same bytes as one clean run) and removes
    both runs' handed-on fits."""
    home, config, _, _ = learner_steps_night(night, tmp_path)
    write_config(config, {**PATCHES, "models.learner_steps": True, "compute.executor": "in_process"})
    monkeypatch.setenv("TURBOMODE_HOME", str(home))
    monkeypatch.setenv("TURBOMODE_CONFIG", str(config))
    job = dg.reconstructable(training_job.run_orchestrator)
    with dg.instance_for_test() as instance:
        fit = kill_the_linear_learner(monkeypatch)
        with dg.execute_job(job, instance, tags={"dagster/partition": DAY}) as failed:
            assert not failed.success
        assert (home / "steps" / failed.run_id / "model_training.fit_hist" / "result.pkl").is_file()
        import xgboost

        monkeypatch.setattr(xgboost.XGBClassifier, "fit", fit)
        options = dg.ReexecutionOptions.from_failure(failed.run_id, instance)
        with dg.execute_job(job, instance, tags={"dagster/partition": DAY}, reexecution_options=options) as again:
            assert again.success
            ran = {event.step_key for event in again.all_events if event.event_type_value == "STEP_START"}
    assert ran == {"model_training.fit_linear", "model_training.stack_ensemble"}
    assert artifact_bytes(home) == night.artifacts_again
    assert asset_files(home) == asset_files(night.home)
    assert list((home / "steps").iterdir()) == []
