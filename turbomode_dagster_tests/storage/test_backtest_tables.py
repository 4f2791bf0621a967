"""The backtest tables: fixed names, a session's rows replaced as a whole, reruns leave the file unchanged."""

from __future__ import annotations

from contextlib import closing

import pandas as pd
import pytest

from turbomode_dagster.storage.sqlite import connect_read_write, migrate, schema_version
from turbomode_dagster.storage.turbomode_db import MIGRATIONS, TurboModeDB
from turbomode_dagster_tests.conftest import dump_tables

TABLES = ("backtest_runs", "backtest_results", "backtest_equity", "backtest_trades")


def backtest(session: str, strategies: tuple[str, ...] = ("ensemble", "equal_weight"), scale: float = 1.0) -> dict:
    run_ids = [f"{session}/{s}" for s in strategies]
    runs = pd.DataFrame(
        {
            "run_id": run_ids,
            "session": session,
            "model_version": "tm-0123456789ab",
            "strategy": list(strategies),
            "parameters": [{"fees_bps": 5.0, "max_positions": 10}] * len(strategies),
            "period": "2026-01-02..2026-11-20",
        }
    )
    results = pd.DataFrame(
        [
            (r, scope, basis, "sharpe", scale * i)
            for i, r in enumerate(run_ids)
            for scope in ("total", "fold 1")
            for basis in ("gross", "net")
        ],
        columns=["run_id", "scope", "basis", "metric", "value"],
    )
    dates = ["2026-11-18", "2026-11-19", "2026-11-20"]
    equity = pd.DataFrame(
        [(r, d, 1e6 * scale, 1e6, 0.0) for r in run_ids for d in dates],
        columns=["run_id", "date", "strategy", "benchmark", "drawdown"],
    )
    trades = pd.DataFrame(
        [(r, "2026-11-19", "AAPL", 10.0 * scale, 101.5, 0.5) for r in run_ids],
        columns=["run_id", "date", "symbol", "shares", "price", "fee"],
    )
    return dict(zip(TABLES, (runs, results, equity, trades), strict=True))


@pytest.fixture
def db(tmp_path) -> TurboModeDB:
    return TurboModeDB.at_home(tmp_path)


def test_a_file_from_before_the_backtests_is_upgraded_in_place(db):
    with closing(connect_read_write(db.path)) as con:
        migrate(con, MIGRATIONS[:1])
        con.execute("INSERT INTO training_runs (run_id, started_at, status) VALUES ('r1', '2026-11-20', 'running')")
    db.replace_backtest("2026-11-20", backtest("2026-11-20"))
    with closing(db.connect_read_only()) as con:
        assert schema_version(con) == len(MIGRATIONS)
        assert con.execute("SELECT run_id FROM training_runs").fetchall() == [("r1",)]


def test_the_tables_hold_a_session(db):
    written = db.replace_backtest("2026-11-20", backtest("2026-11-20"))
    assert written == {"backtest_runs": 2, "backtest_results": 8, "backtest_equity": 6, "backtest_trades": 2}
    runs = db.read_backtest("backtest_runs", "2026-11-20")
    assert runs["strategy"].tolist() == ["ensemble", "equal_weight"]
    assert runs["parameters"].iloc[0] == '{"fees_bps": 5.0, "max_positions": 10}'
    assert runs["created_at"].str.match(r"\d{4}-\d\d-\d\dT").all()


def test_a_rerun_replaces_the_session_and_leaves_the_file_as_one_run_did(db):
    db.replace_backtest("2026-11-19", backtest("2026-11-19"))
    db.replace_backtest("2026-11-20", backtest("2026-11-20", scale=2.0))
    with closing(db.connect_read_write()) as con:  # as if the first run were long ago
        con.execute("UPDATE backtest_runs SET created_at = '2026-11-21T05:00:00+00:00'")
    once = dump_tables(db.path)
    db.replace_backtest("2026-11-20", backtest("2026-11-20", scale=2.0))
    assert dump_tables(db.path) == once  # created_at included: a rerun keeps it
    db.replace_backtest("2026-11-20", backtest("2026-11-20", strategies=("ensemble",), scale=3.0))
    assert db.read_backtest("backtest_runs", "2026-11-20")["strategy"].tolist() == ["ensemble"]
    assert db.read_backtest("backtest_trades", "2026-11-20")["shares"].tolist() == [30.0]
    assert len(db.read_backtest("backtest_equity", "2026-11-20")) == 3  # the dropped run's rows went with it
    assert len(db.read_backtest("backtest_results", "2026-11-19")) == 8  # the other session is untouched


def test_a_failed_write_loses_nothing(db):
    db.replace_backtest("2026-11-20", backtest("2026-11-20"))
    before = dump_tables(db.path)
    bad = backtest("2026-11-20", scale=5.0)
    bad["backtest_results"].loc[0, "basis"] = "after-tax"  # violates the CHECK constraint
    with pytest.raises(Exception, match="CHECK constraint failed"):
        db.replace_backtest("2026-11-20", bad)
    assert dump_tables(db.path) == before


def test_scope_and_basis_are_constrained(db):
    bad = backtest("2026-11-20")
    bad["backtest_results"].loc[0, "scope"] = "fold one"
    with pytest.raises(Exception, match="CHECK constraint failed"):
        db.replace_backtest("2026-11-20", bad)
