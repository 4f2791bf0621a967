"""The backtest_report and drift_report assets after a night's ingestion, features and training.

One night (2026-11-25) on six symbols plus SPY from 2024-06-03, with the sample's planted effect at 1.0.
The backtest and the drift report then run again alone under the Master DB guard (a read-write open
of market_data.db is refused at sqlite3.connect, and its bytes must not change): their tables must not
change either.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.orchestration.assets.adjusted_prices import build_adjusted_prices_asset
from turbomode_dagster.orchestration.assets.backtests import build_backtest_assets
from turbomode_dagster.orchestration.assets.drift import build_drift_assets
from turbomode_dagster.orchestration.assets.features import build_feature_assets
from turbomode_dagster.orchestration.assets.market_data import build_market_data_assets
from turbomode_dagster.orchestration.assets.models import build_model_assets
from turbomode_dagster.orchestration.io_managers import ParquetIOManager, SessionDatasetIOManager
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.sample import SampleSource
from turbomode_dagster.storage.market_db import market_db_path
from turbomode_dagster.storage.turbomode_db import TurboModeDB, turbomode_db_path
from turbomode_dagster_tests.conftest import dump_tables, write_config
from turbomode_dagster_tests.master_db_guard import master_db_untouched
from turbomode_dagster_tests.orchestration.assets.backfill import first_night

DAY = "2026-11-25"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "JPM", "XOM", "KO", "SPY"]
PATCHES = {
    "universe.symbols": SYMBOLS,
    "history.start_date": "2024-06-03",
    "sources.order": ["sample"],
    "sources.sample.planted_effect": 1.0,
    "models.learners": [
        {"name": "hist", "kind": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "n_jobs": 1}},
        {
            "name": "linear",
            "kind": "xgboost",
            "params": {"booster": "gblinear", "updater": "coord_descent", "n_estimators": 10, "n_jobs": 1},
        },
    ],
    "models.n_folds": 3,
    "models.shap_rows": 200,
    "backtest.chance_seeds": 5,
    "backtest.max_positions": 3,
}
TABLES = ("backtest_runs", "backtest_results", "backtest_equity", "backtest_trades")
DRIFT_TABLES = ("drift_baselines", "drift_monitoring")
RERUN = ["backtest_report", "drift_report"]


@dataclass
class Night:
    home: Path
    first: dg.ExecuteInProcessResult
    after_first: dict[str, list[tuple]]
    again: dg.ExecuteInProcessResult
    after_again: dict[str, list[tuple]]

    @property
    def db(self) -> TurboModeDB:
        return TurboModeDB(turbomode_db_path(self.home))

    def raw_metadata(self, node: str = "backtest_report") -> dict[str, dg.MetadataValue]:
        (event,) = self.first.asset_materializations_for_node(node)
        return dict(event.metadata)

    def metadata(self, node: str = "backtest_report") -> dict:
        return {k: v.value for k, v in self.raw_metadata(node).items()}


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    root = tmp_path_factory.mktemp("backtest_night")
    home = root / "home"
    home.mkdir()
    config = write_config(root / "config.json", PATCHES)
    settings = load_settings(config)
    assets = [
        build_market_data_assets(settings),
        build_adjusted_prices_asset(settings),
        *build_feature_assets(settings),
        build_model_assets(settings),
        build_backtest_assets(settings),
        build_drift_assets(settings),
    ]
    turbomode = TurboModeHome(home=str(home), config_file=str(config))
    resources = {
        "turbomode": turbomode,
        "master_db": MasterDBWriteAccess(turbomode=turbomode),
        "source_chain": SourceChain([SampleSource(seed=7, planted_effect=1.0)]),
        "parquet_io_manager": ParquetIOManager(root=str(home / "assets")),
        "session_dataset_io_manager": SessionDatasetIOManager(root=str(home / "datasets")),
    }
    instance = dg.DagsterInstance.ephemeral()  # shared, so the rerun finds the training run's model_version
    first = first_night(assets, resources, PATCHES["history.start_date"], DAY, instance)
    after_first = dump_tables(turbomode_db_path(home))
    with master_db_untouched(market_db_path(home)):
        again = dg.materialize(assets, resources=resources, partition_key=DAY, selection=RERUN, instance=instance)
    return Night(home, first, after_first, again, dump_tables(turbomode_db_path(home)))


def test_the_session_is_stored_for_the_ensemble_learners_and_benchmarks(night):
    runs = night.db.read_backtest("backtest_runs", DAY)
    assert set(runs["strategy"]) == {"ensemble", "hist", "linear", "benchmark:equal_weight", "benchmark:SPY"}
    champion = night.db.champion()
    assert champion is not None and set(runs["model_version"]) == {champion.model_version}
    results = night.db.read_backtest("backtest_results", DAY)
    assert set(results["basis"]) == {"gross", "net"}
    assert {"total", "fold 1", "fold 2"} <= set(results["scope"])
    assert (results["metric"] == "sharpe").any()
    equity = night.db.read_backtest("backtest_equity", DAY)
    assert equity.groupby("run_id").size().min() > 100
    assert len(night.db.read_backtest("backtest_trades", DAY)) > 0


def test_a_rerun_changes_no_table_and_never_opens_the_master_db_for_writing(night):
    assert night.again.success
    assert [e.asset_key for e in night.again.get_asset_materialization_events()] == [dg.AssetKey(k) for k in RERUN]
    assert all(night.after_first[t] for t in (*TABLES, *DRIFT_TABLES))
    assert night.after_again == night.after_first


def test_the_metadata_shows_the_metrics_the_picture_and_chance(night):
    meta = night.metadata()
    assert meta["benchmark"] == "benchmark:SPY"
    for key in ("net_sharpe", "net_cagr", "net_max_drawdown", "chance_percentile", "benchmark_net_sharpe", "fees"):
        assert isinstance(meta[key], float), key
    assert meta["trades"] > 0
    headline = meta["metrics"]
    assert [c.name for c in headline.schema.columns] == ["metric", "ensemble", "equal_weight", "SPY"]
    sharpe = next(r.data for r in headline.records if r.data["metric"] == "sharpe")
    assert sharpe["ensemble"] == pytest.approx(meta["net_sharpe"], abs=1e-4)
    assert sharpe["SPY"] == pytest.approx(meta["benchmark_net_sharpe"], abs=1e-4)
    strategies = [(r.data["strategy"], r.data["basis"]) for r in meta["strategies"].records]
    assert strategies == [(leg, basis) for leg in ("ensemble", "hist", "linear") for basis in ("net", "gross")]
    picture = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", meta["equity_curve"])
    assert picture is not None
    assert base64.b64decode(picture.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert meta["chance_net_sharpe"]["seeds"] == 5


def test_numbers_that_trend_are_numeric_metadata(night):
    """The Plots tab draws only int and float metadata: text or JSON numbers would show no line."""
    kinds = {
        "backtest_report": {"net_sharpe": dg.FloatMetadataValue, "net_cagr": dg.FloatMetadataValue},
        "drift_report": {"features_alerting": dg.IntMetadataValue, "share_alerting": dg.FloatMetadataValue},
    }
    for node, expected in kinds.items():
        raw = night.raw_metadata(node)
        for key, kind in expected.items():
            assert isinstance(raw[key], kind), (node, key, type(raw[key]))
    assert isinstance(night.raw_metadata("backtest_report")["trades"], dg.IntMetadataValue)


def test_the_drift_report_stores_the_session_against_the_champions_baseline(night):
    champion = night.db.champion()
    rows = night.db.read_table("drift_monitoring", as_of_date=DAY)
    assert set(rows["model_version"]) == {champion.model_version}
    assert set(rows.loc[rows["kind"] == "prediction", "feature"]) == {"p_buy", "p_sell"}
    assert "bb_upper_20" not in set(rows["feature"]) and "rsi_14" in set(rows["feature"])
    assert set(rows["status"]) <= {"ok", "warn", "alert"} and (rows["threshold"] >= 0.25).all()


def test_the_drift_metadata_has_the_table_the_decision_and_the_picture(night):
    meta = night.metadata("drift_report")
    statuses = [record.data["status"] for record in meta["drift_table"].records]
    assert statuses == sorted(statuses, key={"alert": 0, "warn": 1, "ok": 2}.get), "most severe first"
    assert [c.name for c in meta["drift_table"].schema.columns] == ["feature", "status", "psi", "threshold"]
    assert [c.name for c in meta["drift_tests"].schema.columns] == ["feature", "kl", "ks", "ks_pvalue"]
    features = [record.data["feature"] for record in meta["drift_table"].records]
    assert [record.data["feature"] for record in meta["drift_tests"].records] == features, "same rows, same order"
    assert isinstance(meta["share_alerting"], float) and isinstance(meta["features_alerting"], int)
    assert meta["decision"].startswith("**")
    assert set(meta["class_mix_change"]) == {"p_sell", "p_hold", "p_buy"}
    assert abs(sum(meta["class_mix_change"].values())) < 1e-3, "probabilities sum to 1 in both mixes"
    picture = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", meta["drift_picture"])
    assert picture is not None and base64.b64decode(picture.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
