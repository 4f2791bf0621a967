"""Retention of TurboMode.db rows: baselines go with their model's artifacts, backtests beyond keep_sessions go."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from turbomode_dagster.config import Maintenance
from turbomode_dagster.maintenance.registry_rows import prune_backtests, prune_baselines
from turbomode_dagster.maintenance.retention import models_to_keep
from turbomode_dagster.maintenance.weekly import run_maintenance
from turbomode_dagster.storage.drift_log import DriftLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB
from turbomode_dagster_tests.maintenance.test_retention import SESSIONS, home, version  # noqa: F401 (fixture)
from turbomode_dagster_tests.storage.test_backtest_tables import TABLES, backtest


def _with_baselines_and_backtests(home: Path) -> TurboModeDB:  # noqa: F811
    db = TurboModeDB.at_home(home)
    for n in range(1, 7):
        DriftLog(db).store_baseline(version(n), f'{{"format": 3, "v": {n}}}')
    for day in SESSIONS:
        db.replace_backtest(day, backtest(day))
    return db


def _sessions(db: TurboModeDB) -> list[str]:
    with db.writing() as con:
        return [s for (s,) in con.execute("SELECT DISTINCT session FROM backtest_runs ORDER BY session")]


def test_baselines_go_exactly_where_model_artifacts_go(home: Path) -> None:  # noqa: F811
    db = _with_baselines_and_backtests(home)
    keep = models_to_keep(db, keep_versions=2, keep_sessions=3)
    outcome = prune_baselines(db, keep)
    assert outcome.removed == (version(2), version(4)), "neither the champion nor a recent session's model"
    assert outcome.rows == {"drift_baselines": 2}
    log = DriftLog(db)
    assert [n for n in range(1, 7) if log.baseline(version(n)) is not None] == [1, 3, 5, 6]
    assert log.baseline(version(1)) == '{"format": 3, "v": 1}', "the champion's baseline is untouched"
    assert prune_baselines(db, keep).total == 0


def test_backtests_of_sessions_beyond_keep_sessions_go_with_all_their_rows(home: Path) -> None:  # noqa: F811
    db = _with_baselines_and_backtests(home)
    outcome = prune_backtests(db, keep_sessions=2)
    # each session: 2 runs, 8 results, 6 equity rows, 2 trades (see backtest()); four sessions go
    assert outcome.rows == {"backtest_runs": 8, "backtest_results": 32, "backtest_equity": 24, "backtest_trades": 8}
    assert _sessions(db) == SESSIONS[-2:]
    for table in TABLES:
        assert len(db.read_backtest(table, SESSIONS[-1])) > 0, table
        assert db.read_backtest(table, SESSIONS[0]).empty, table
    assert prune_backtests(db, keep_sessions=2).total == 0


def test_weekly_maintenance_prunes_both_and_reports_it(home: Path) -> None:  # noqa: F811
    db = _with_baselines_and_backtests(home)
    cfg = Maintenance(keep_sessions=3, keep_model_versions=2)
    report = run_maintenance(home, home / "market_data.db", None, cfg, dt.datetime(2026, 11, 29, tzinfo=dt.UTC))
    assert [o.total for o in report.rows] == [2, 3 * (2 + 8 + 6 + 2)]
    assert _sessions(db) == SESSIONS[-3:]
    summary = report.summary_table().set_index("target")["result"]
    assert summary["drift baselines"] == "removed 2 rows (drift_baselines 2)"
    assert summary["backtests"].startswith("removed 54 rows (backtest_runs 6, ")
