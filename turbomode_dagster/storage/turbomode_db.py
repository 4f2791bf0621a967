"""The TurboMode DB: model registry, training runs, SHAP logs, predictions and signals.

SQLite at `$TURBOMODE_HOME/turbomode.db`, opened through `storage.sqlite` (WAL, busy timeout,
versioned migrations). Later tables arrive as later migrations: the second holds the backtests
(backtest_runs and, by run, backtest_results, backtest_equity, backtest_trades), the third the drift
log (`storage.drift_log`: baselines, drift_monitoring, retrain_flags), the fourth the failed runs
(`storage.run_failures`). Every write is one
transaction, and every writer is idempotent: re-registering a model updates its row in place,
and a day's scan or a model's SHAP log replaces its partition instead of adding to it. JSON columns
hold sorted-key JSON, with NaN written as null.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from turbomode_dagster.storage.sqlite import connect_read_only, connect_read_write, migrate, transaction

FILE_NAME = "turbomode.db"
CHAMPION, CHALLENGER, RETIRED = "champion", "challenger", "retired"

MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE model_registry (
        model_version TEXT PRIMARY KEY, created_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('champion', 'challenger', 'retired')),
        data_fingerprint TEXT NOT NULL, feature_list TEXT NOT NULL, parameters TEXT NOT NULL,
        metrics TEXT NOT NULL, artifact_path TEXT NOT NULL, promotion_decision TEXT);
    CREATE UNIQUE INDEX model_registry_one_champion ON model_registry (status) WHERE status = 'champion';
    CREATE TABLE training_runs (
        run_id TEXT PRIMARY KEY, model_version TEXT, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
        sample_count INTEGER, metrics TEXT, error TEXT);
    CREATE TABLE shap_logs (
        model_version TEXT NOT NULL REFERENCES model_registry (model_version), model_name TEXT NOT NULL,
        class_label TEXT NOT NULL CHECK (class_label IN ('SELL', 'HOLD', 'BUY')), feature TEXT NOT NULL,
        mean_abs_shap REAL NOT NULL, rank INTEGER NOT NULL,
        PRIMARY KEY (model_version, model_name, class_label, feature));
    CREATE TABLE predictions (
        symbol TEXT NOT NULL, as_of_date TEXT NOT NULL, target_date TEXT NOT NULL,
        model_version TEXT NOT NULL REFERENCES model_registry (model_version),
        p_sell REAL NOT NULL, p_hold REAL NOT NULL, p_buy REAL NOT NULL,
        PRIMARY KEY (symbol, as_of_date));
    CREATE INDEX predictions_by_date ON predictions (as_of_date);
    CREATE TABLE signals (
        symbol TEXT NOT NULL, as_of_date TEXT NOT NULL, target_date TEXT NOT NULL,
        signal TEXT NOT NULL CHECK (signal IN ('BUY', 'SELL', 'HOLD')), confidence REAL NOT NULL,
        model_version TEXT NOT NULL REFERENCES model_registry (model_version), top_features TEXT,
        PRIMARY KEY (symbol, as_of_date));
    CREATE INDEX signals_by_date ON signals (as_of_date)
    """,
    """
    CREATE TABLE backtest_runs (
        run_id TEXT PRIMARY KEY, session TEXT NOT NULL, model_version TEXT, strategy TEXT NOT NULL,
        parameters TEXT NOT NULL, period TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (session, strategy));
    CREATE TABLE backtest_results (
        run_id TEXT NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE, scope TEXT NOT NULL
        CHECK (scope = 'total' OR scope GLOB 'fold [0-9]*'), basis TEXT NOT NULL CHECK (basis IN ('gross', 'net')),
        metric TEXT NOT NULL, value REAL, PRIMARY KEY (run_id, scope, basis, metric));
    CREATE TABLE backtest_equity (
        run_id TEXT NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE, date TEXT NOT NULL,
        strategy REAL NOT NULL, benchmark REAL, drawdown REAL NOT NULL, PRIMARY KEY (run_id, date));
    CREATE TABLE backtest_trades (
        run_id TEXT NOT NULL REFERENCES backtest_runs (run_id) ON DELETE CASCADE, date TEXT NOT NULL,
        symbol TEXT NOT NULL, shares REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL,
        PRIMARY KEY (run_id, date, symbol))
    """,
    """
    CREATE TABLE drift_baselines (
        model_version TEXT PRIMARY KEY REFERENCES model_registry (model_version), baseline TEXT NOT NULL);
    CREATE TABLE drift_monitoring (
        as_of_date TEXT NOT NULL, model_version TEXT NOT NULL, feature TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('feature', 'prediction')), rows INTEGER NOT NULL,
        psi REAL, kl_divergence REAL, ks_statistic REAL, ks_pvalue REAL, threshold REAL NOT NULL,
        kl_threshold REAL NOT NULL, ks_threshold REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'warn', 'alert')),
        PRIMARY KEY (as_of_date, model_version, feature));
    CREATE TABLE retrain_flags (
        flag_id TEXT PRIMARY KEY, as_of_date TEXT NOT NULL, model_version TEXT NOT NULL, reason TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'resolved')), resolved_by TEXT, raised_at TEXT NOT NULL,
        resolved_at TEXT, UNIQUE (as_of_date, model_version))
    """,
    """
    CREATE TABLE run_failures (
        run_id TEXT PRIMARY KEY, job_name TEXT NOT NULL, task_id INTEGER, session TEXT, step TEXT,
        error TEXT NOT NULL, failed_at TEXT NOT NULL);
    CREATE INDEX run_failures_by_task ON run_failures (task_id, failed_at)
    """,
)
BACKTEST_COLUMNS = {
    "backtest_runs": ("run_id", "session", "model_version", "strategy", "parameters", "period", "created_at"),
    "backtest_results": ("run_id", "scope", "basis", "metric", "value"),
    "backtest_equity": ("run_id", "date", "strategy", "benchmark", "drawdown"),
    "backtest_trades": ("run_id", "date", "symbol", "shares", "price", "fee"),
}
BACKTEST_ORDER = {
    "backtest_runs": "t.run_id",
    "backtest_results": "t.run_id, t.scope, t.basis, t.metric",
    "backtest_equity": "t.run_id, t.date",
    "backtest_trades": "t.run_id, t.date, t.symbol",
}

PREDICTION_COLUMNS = ("symbol", "target_date", "model_version", "p_sell", "p_hold", "p_buy")
SIGNAL_COLUMNS = ("symbol", "target_date", "signal", "confidence", "model_version", "top_features")
SHAP_COLUMNS = ("model_name", "class_label", "feature", "mean_abs_shap", "rank")
READ_ORDER = {
    "model_registry": "created_at, model_version",
    "training_runs": "started_at, run_id",
    "shap_logs": "model_version, model_name, class_label, rank",
    "predictions": "as_of_date, symbol",
    "signals": "as_of_date, symbol",
    "drift_monitoring": "as_of_date, kind, feature",
    "retrain_flags": "as_of_date, flag_id",
}


def turbomode_db_path(home: Path) -> Path:
    """Where the TurboMode DB lives under TURBOMODE_HOME."""
    return home / FILE_NAME


def to_json(value: Any) -> str:
    """Sorted-key JSON with NaN and infinities as null, so the text is valid and reproducible."""
    return json.dumps(_finite(value), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    """`value` with non-finite floats replaced by None, through dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class ModelRecord:
    """One row of model_registry, with its JSON columns decoded."""

    model_version: str
    created_at: str
    status: str
    data_fingerprint: str
    feature_list: list[str]
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    artifact_path: str
    promotion_decision: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrainingRun:
    """One row of training_runs: a training attempt, successful or not."""

    run_id: str
    started_at: str
    status: str
    model_version: str | None = None
    finished_at: str | None = None
    sample_count: int | None = None
    metrics: dict[str, Any] | None = None
    error: str | None = None


class TurboModeDB:
    """Access to the TurboMode DB file: each call opens a short-lived, migrated connection."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def at_home(cls, home: Path) -> TurboModeDB:
        """The TurboMode DB under TURBOMODE_HOME."""
        return cls(turbomode_db_path(home))

    def connect_read_write(self) -> sqlite3.Connection:
        """A read-write connection with every migration applied (creating the file if needed)."""
        con = connect_read_write(self.path)
        migrate(con, MIGRATIONS)
        return con

    def connect_read_only(self) -> sqlite3.Connection:
        """A `mode=ro` connection for readers: writes through it raise."""
        return connect_read_only(self.path)

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh read-write connection, closed afterwards."""
        with closing(self.connect_read_write()) as con, transaction(con):
            yield con

    def upsert_model(self, record: ModelRecord) -> None:
        """Insert a model, or refresh its description; created_at, status and decision are kept."""
        with self.writing() as con:
            con.execute(
                "INSERT INTO model_registry (model_version, created_at, status, data_fingerprint, "
                "feature_list, parameters, metrics, artifact_path, promotion_decision) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_version) DO UPDATE SET "
                "data_fingerprint = excluded.data_fingerprint, feature_list = excluded.feature_list, "
                "parameters = excluded.parameters, metrics = excluded.metrics, "
                "artifact_path = excluded.artifact_path",
                (
                    record.model_version,
                    record.created_at,
                    record.status,
                    record.data_fingerprint,
                    to_json(record.feature_list),
                    to_json(record.parameters),
                    to_json(record.metrics),
                    record.artifact_path,
                    None if record.promotion_decision is None else to_json(record.promotion_decision),
                ),
            )

    def model(self, model_version: str) -> ModelRecord | None:
        """The registry row of one model version, or None."""
        return self._one_model("model_version = ?", (model_version,))

    def champion(self) -> ModelRecord | None:
        """The current champion, or None before the first promotion."""
        return self._one_model("status = ?", (CHAMPION,))

    def models(self) -> list[ModelRecord]:
        """Every registered model, oldest first."""
        with closing(self.connect_read_write()) as con:
            rows = con.execute(f"{_SELECT_MODEL} ORDER BY created_at, model_version").fetchall()
        return [_model_record(row) for row in rows]

    def _one_model(self, where: str, args: tuple[Any, ...]) -> ModelRecord | None:
        """The model row matching `where`, decoded."""
        with closing(self.connect_read_write()) as con:
            row = con.execute(f"{_SELECT_MODEL} WHERE {where}", args).fetchone()
        return None if row is None else _model_record(row)

    def record_decision(self, model_version: str, decision: Mapping[str, Any], promote: bool) -> None:
        """Store a promotion decision; when promoting, retire the old champion in the same transaction."""
        with self.writing() as con:
            if promote:
                con.execute(
                    "UPDATE model_registry SET status = ? WHERE status = ? AND model_version <> ?",
                    (RETIRED, CHAMPION, model_version),
                )
            changed = con.execute(
                "UPDATE model_registry SET promotion_decision = ?, "
                "status = CASE WHEN ? THEN ? ELSE status END WHERE model_version = ?",
                (to_json(decision), promote, CHAMPION, model_version),
            ).rowcount
            if changed != 1:
                raise KeyError(f"model {model_version!r} is not registered")

    def record_training_run(self, run: TrainingRun) -> None:
        """Insert or update a training run by run_id (start it as running, finish it later)."""
        with self.writing() as con:
            con.execute(
                "INSERT OR REPLACE INTO training_runs (run_id, model_version, started_at, finished_at, "
                "status, sample_count, metrics, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.model_version,
                    run.started_at,
                    run.finished_at,
                    run.status,
                    run.sample_count,
                    None if run.metrics is None else to_json(run.metrics),
                    run.error,
                ),
            )

    def start_training_run(self, run_id: str, at: str) -> str:
        """Mark the run's training running (a retry reopens a failed row, clearing what the failed attempt
        left) and return when it first started."""
        with self.writing() as con:
            con.execute(
                "INSERT INTO training_runs (run_id, started_at, status) VALUES (?, ?, 'running') "
                "ON CONFLICT (run_id) DO UPDATE SET status = 'running', finished_at = NULL, error = NULL, "
                "model_version = NULL, metrics = NULL, sample_count = NULL",
                (run_id, at),
            )
            return con.execute("SELECT started_at FROM training_runs WHERE run_id = ?", (run_id,)).fetchone()[0]

    def fail_training_run(self, run_id: str, at: str, samples: int, error: str) -> None:
        """Mark the run's training failed at `at` with `error`; a run already failed (another learner's step)
        keeps that error too, one line each. Started now if the run has no row yet."""
        with self.writing() as con:
            con.execute(
                "INSERT INTO training_runs (run_id, started_at, finished_at, status, sample_count, error) "
                "VALUES (?, ?, ?, 'failed', ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                "error = CASE WHEN status = 'failed' AND error IS NOT NULL THEN error || char(10) || excluded.error "
                "ELSE excluded.error END, status = 'failed', finished_at = excluded.finished_at, "
                "sample_count = excluded.sample_count, model_version = NULL, metrics = NULL",
                (run_id, at, at, samples, error),
            )

    def replace_shap(self, model_version: str, importance: pd.DataFrame) -> int:
        """Replace a model version's SHAP log with `importance` (model_name, class_label, feature, ...)."""
        rows = [
            (model_version, *sqlite_values(row))
            for row in importance.loc[:, list(SHAP_COLUMNS)].itertuples(index=False)
        ]
        with self.writing() as con:
            con.execute("DELETE FROM shap_logs WHERE model_version = ?", (model_version,))
            con.executemany(
                f"INSERT INTO shap_logs (model_version, {', '.join(SHAP_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def replace_scan(self, as_of_date: str, predictions: pd.DataFrame, signals: pd.DataFrame) -> int:
        """Replace one day's predictions and signals together; returns the number of predictions.

        `predictions` has symbol, target_date, model_version, p_sell, p_hold, p_buy; `signals` has
        symbol, target_date, signal, confidence, model_version, top_features (a list, stored as JSON).
        """
        prediction_rows = [
            (as_of_date, *sqlite_values(row))
            for row in predictions.loc[:, list(PREDICTION_COLUMNS)].itertuples(index=False)
        ]
        signal_rows = [
            (as_of_date, *sqlite_values(row[:-1]), None if row[-1] is None else to_json(row[-1]))
            for row in signals.loc[:, list(SIGNAL_COLUMNS)].itertuples(index=False)
        ]
        with self.writing() as con:
            con.execute("DELETE FROM predictions WHERE as_of_date = ?", (as_of_date,))
            con.execute("DELETE FROM signals WHERE as_of_date = ?", (as_of_date,))
            con.executemany(
                f"INSERT INTO predictions (as_of_date, {', '.join(PREDICTION_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                prediction_rows,
            )
            con.executemany(
                f"INSERT INTO signals (as_of_date, {', '.join(SIGNAL_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                signal_rows,
            )
        return len(prediction_rows)

    def replace_backtest(self, session: str, tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
        """Replace one session's backtest (runs, results, equity, trades) in one transaction.

        `tables` maps each backtest table to its rows (columns as in BACKTEST_COLUMNS; for runs,
        `parameters` is a dict and `created_at` is set here). A run that existed keeps its created_at,
        so a rerun of the session leaves every table as the first run left it. Returns the rows
        written per table.
        """
        missing = sorted(set(BACKTEST_COLUMNS) - set(tables))
        if missing:
            raise KeyError(f"backtest tables missing from the write: {missing}")
        runs = tables["backtest_runs"]
        if (runs["session"] != session).any():
            raise ValueError(f"backtest_runs rows for a session other than {session}")
        written = {}
        with self.writing() as con:
            created = dict(con.execute("SELECT run_id, created_at FROM backtest_runs WHERE session = ?", (session,)))
            now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            # The child tables go with their runs (ON DELETE CASCADE).
            con.execute("DELETE FROM backtest_runs WHERE session = ?", (session,))
            for table, columns in BACKTEST_COLUMNS.items():
                frame = tables[table]
                if table == "backtest_runs":
                    frame = frame.assign(
                        parameters=frame["parameters"].map(to_json),
                        created_at=[created.get(run_id, now) for run_id in frame["run_id"]],
                    )
                rows = [sqlite_values(row) for row in frame.loc[:, list(columns)].itertuples(index=False)]
                con.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows
                )
                written[table] = len(rows)
        return written

    def delete_backtests_before_newest(self, keep_sessions: int) -> dict[str, int]:
        """Remove the backtests of every session but the newest `keep_sessions`; returns rows removed per table.

        Each night's backtest covers the whole out-of-fold window again, so an older session's rows
        are superseded, not history; its child rows go with its runs (ON DELETE CASCADE).
        """
        if keep_sessions < 1:
            raise ValueError(f"keep_sessions must be at least 1, got {keep_sessions}")
        with self.writing() as con:
            old = (
                "SELECT run_id FROM backtest_runs WHERE session NOT IN "
                "(SELECT DISTINCT session FROM backtest_runs ORDER BY session DESC LIMIT ?)"
            )
            count = f"SELECT count(*) FROM {{table}} WHERE run_id IN ({old})"
            removed = {
                table: con.execute(count.format(table=table), (keep_sessions,)).fetchone()[0]
                for table in BACKTEST_COLUMNS
            }
            con.execute(f"DELETE FROM backtest_runs WHERE run_id IN ({old})", (keep_sessions,))
        return removed

    def read_backtest(self, table: str, session: str) -> pd.DataFrame:
        """One session's rows of a backtest table (read-only connection), in key order."""
        if table not in BACKTEST_COLUMNS:
            raise ValueError(f"unknown backtest table {table!r}; expected one of {sorted(BACKTEST_COLUMNS)}")
        query = (
            f"SELECT t.* FROM {table} t JOIN backtest_runs r USING (run_id) WHERE r.session = ? "
            f"ORDER BY {BACKTEST_ORDER[table]}"
        )
        with closing(self.connect_read_only()) as con:
            return pd.read_sql_query(query, con, params=(session,))

    def read_table(self, table: str, as_of_date: str | None = None) -> pd.DataFrame:
        """A table as a frame (read-only connection), optionally one as_of_date's rows, in key order."""
        if table not in READ_ORDER:
            raise ValueError(f"unknown table {table!r}; expected one of {sorted(READ_ORDER)}")
        query = f"SELECT * FROM {table}" + (" WHERE as_of_date = ?" if as_of_date else "")
        query += f" ORDER BY {READ_ORDER[table]}"
        with closing(self.connect_read_only()) as con:
            return pd.read_sql_query(query, con, params=(as_of_date,) if as_of_date else None)


_SELECT_MODEL = (
    "SELECT model_version, created_at, status, data_fingerprint, feature_list, parameters, metrics, "
    "artifact_path, promotion_decision FROM model_registry"
)


def _model_record(row: tuple[Any, ...]) -> ModelRecord:
    """A model_registry row decoded into a ModelRecord."""
    version, created, status, fingerprint, features, parameters, metrics, path, decision = row
    return ModelRecord(
        version,
        created,
        status,
        fingerprint,
        json.loads(features),
        json.loads(parameters),
        json.loads(metrics),
        path,
        None if decision is None else json.loads(decision),
    )


def sqlite_values(values: Sequence[Any]) -> tuple[Any, ...]:
    """numpy scalars and timestamps as Python values SQLite stores (floats, ints, ISO dates)."""
    out = []
    for value in values:
        if isinstance(value, pd.Timestamp):
            out.append(value.date().isoformat())
        elif hasattr(value, "item"):
            out.append(value.item())
        else:
            out.append(value)
    return tuple(out)
