"""The TurboMode DB: fixed table names, constraints, one champion, and idempotent partition writes."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pandas as pd
import pytest

from turbomode_dagster.storage.sqlite import schema_version, table_names
from turbomode_dagster.storage.turbomode_db import (
    CHALLENGER,
    CHAMPION,
    MIGRATIONS,
    ModelRecord,
    TrainingRun,
    TurboModeDB,
    to_json,
)

DAY = "2026-11-25"


@pytest.fixture
def db(tmp_path) -> TurboModeDB:
    return TurboModeDB.at_home(tmp_path)


def record(version: str = "tm-000000000001", status: str = CHALLENGER, **changes) -> ModelRecord:
    values = {
        "model_version": version,
        "created_at": "2026-11-25T22:00:00+00:00",
        "status": status,
        "data_fingerprint": "f" * 64,
        "feature_list": ["alpha", "beta"],
        "parameters": {"seed": 0},
        "metrics": {"ensemble": {"log_loss": 1.0}},
        "artifact_path": f"/models/{version}",
    }
    return ModelRecord(**{**values, **changes})


def scan(version: str, p_buy: float = 0.5, symbols=("AAPL", "MSFT")) -> tuple[pd.DataFrame, pd.DataFrame]:
    predictions = pd.DataFrame(
        {
            "symbol": list(symbols),
            "target_date": "2026-12-03",
            "model_version": version,
            "p_sell": 0.2,
            "p_hold": 0.8 - p_buy,
            "p_buy": p_buy,
        }
    )
    signals = predictions[["symbol", "target_date", "model_version"]].assign(
        signal="BUY", confidence=p_buy, top_features=[[{"feature": "alpha", "contribution": 0.3}]] * len(symbols)
    )
    return predictions, signals


def test_migration_creates_the_fixed_tables(db):
    with closing(db.connect_read_write()) as con:
        assert schema_version(con) == len(MIGRATIONS) == 4
        assert table_names(con) >= {"model_registry", "training_runs", "shap_logs", "predictions", "signals"}
        assert table_names(con) >= {"backtest_runs", "backtest_results", "backtest_equity", "backtest_trades"}
        assert table_names(con) >= {"drift_baselines", "drift_monitoring", "retrain_flags", "run_failures"}
    assert db.path.name == "turbomode.db"
    with closing(db.connect_read_write()) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_re_registration_updates_in_place(db):
    db.upsert_model(record())
    db.upsert_model(record(created_at="2030-01-01T00:00:00+00:00", metrics={"ensemble": {"log_loss": 0.9}}))
    assert len(db.models()) == 1
    stored = db.model("tm-000000000001")
    assert stored.created_at == "2026-11-25T22:00:00+00:00"
    assert stored.metrics == {"ensemble": {"log_loss": 0.9}}
    assert stored.feature_list == ["alpha", "beta"]


def test_status_is_checked_and_one_champion_is_enforced(db):
    with pytest.raises(sqlite3.IntegrityError):
        db.upsert_model(record(status="king"))
    db.upsert_model(record("tm-a", status=CHAMPION))
    with pytest.raises(sqlite3.IntegrityError):
        db.upsert_model(record("tm-b", status=CHAMPION))


def test_record_decision_promotes_and_retires_atomically(db):
    db.upsert_model(record("tm-a"))
    db.upsert_model(record("tm-b"))
    db.record_decision("tm-a", {"promote": True}, promote=True)
    db.record_decision("tm-b", {"promote": True}, promote=True)
    assert db.champion().model_version == "tm-b"
    assert db.model("tm-a").status == "retired"
    assert db.model("tm-b").promotion_decision == {"promote": True}
    with pytest.raises(KeyError):
        db.record_decision("tm-missing", {}, promote=False)


def test_replace_scan_is_idempotent_per_date(db):
    db.upsert_model(record("tm-a"))
    db.replace_scan(DAY, *scan("tm-a", 0.5))
    db.replace_scan(DAY, *scan("tm-a", 0.6))
    db.replace_scan("2026-11-24", *scan("tm-a", 0.4, symbols=("AAPL",)))
    today = db.read_table("predictions", DAY)
    assert len(today) == 2 and (today["p_buy"] == 0.6).all()
    assert len(db.read_table("predictions")) == 3
    signals = db.read_table("signals", DAY)
    assert json.loads(signals["top_features"].iloc[0]) == [{"contribution": 0.3, "feature": "alpha"}]


def test_a_failed_scan_write_leaves_the_old_partition(db):
    db.upsert_model(record("tm-a"))
    db.replace_scan(DAY, *scan("tm-a", 0.5))
    predictions, signals = scan("tm-a", 0.6)
    with pytest.raises(sqlite3.IntegrityError):
        db.replace_scan(DAY, predictions, signals.assign(signal="MAYBE"))
    assert (db.read_table("predictions", DAY)["p_buy"] == 0.5).all()


def test_predictions_must_name_a_registered_model(db):
    with pytest.raises(sqlite3.IntegrityError):
        db.replace_scan(DAY, *scan("tm-unknown"))


def test_shap_log_and_training_runs_replace_by_key(db):
    db.upsert_model(record("tm-a"))
    importance = pd.DataFrame(
        {
            "model_name": "hist",
            "class_label": ["BUY", "BUY"],
            "feature": ["alpha", "beta"],
            "mean_abs_shap": [0.3, 0.1],
            "rank": [1, 2],
        }
    )
    db.replace_shap("tm-a", importance)
    assert db.replace_shap("tm-a", importance) == 2
    assert len(db.read_table("shap_logs")) == 2
    db.record_training_run(TrainingRun("run-1", "2026-11-25T22:00:00", "running"))
    db.record_training_run(
        TrainingRun("run-1", "2026-11-25T22:00:00", "succeeded", "tm-a", "2026-11-25T22:05:00", 100, {"x": 1.0})
    )
    runs = db.read_table("training_runs")
    assert len(runs) == 1 and runs.loc[0, "status"] == "succeeded" and runs.loc[0, "sample_count"] == 100


def test_learner_failures_add_up_and_a_retry_reopens_the_run_clean(db):
    """Two learner steps fail in one run: both errors stay, the first start is kept. The stacking step (or
    a retry of the single step) reopens the row to running, clearing what the failed attempt left."""
    db.fail_training_run("run-1", "2026-11-25T22:01:00", 100, "learner 'a' failed")
    db.fail_training_run("run-1", "2026-11-25T22:02:00", 100, "learner 'b' failed")
    row = db.read_table("training_runs").iloc[0]
    assert (row["status"], row["started_at"], row["finished_at"]) == (
        "failed",
        "2026-11-25T22:01:00",
        "2026-11-25T22:02:00",
    )
    assert row["error"] == "learner 'a' failed\nlearner 'b' failed"
    assert db.start_training_run("run-1", "2026-11-25T22:04:00") == "2026-11-25T22:01:00"
    row = db.read_table("training_runs").iloc[0]
    assert row["status"] == "running" and row["error"] is None and row["finished_at"] is None
    db.record_training_run(
        TrainingRun("run-1", "2026-11-25T22:01:00", "succeeded", "tm-a", "2026-11-25T22:05:00", 100, {"x": 1.0})
    )
    assert db.start_training_run("run-1", "2026-11-25T22:06:00") == "2026-11-25T22:01:00"
    row = db.read_table("training_runs").iloc[0]
    assert row["model_version"] is None and row["metrics"] is None and pd.isna(row["sample_count"])
    db.fail_training_run("run-1", "2026-11-25T22:07:00", 100, "the Parquet write failed")
    assert db.read_table("training_runs").iloc[0]["error"] == "the Parquet write failed"
    assert db.start_training_run("run-2", "2026-11-25T23:00:00") == "2026-11-25T23:00:00"


def test_readers_cannot_write(db):
    db.upsert_model(record())
    with closing(db.connect_read_only()) as con, pytest.raises(sqlite3.DatabaseError):
        con.execute("DELETE FROM model_registry")
    with pytest.raises(ValueError, match="unknown table"):
        db.read_table("sqlite_master")


def test_json_is_sorted_and_nan_free():
    assert to_json({"b": float("nan"), "a": [1.5, float("inf")]}) == '{"a": [1.5, null], "b": null}'
