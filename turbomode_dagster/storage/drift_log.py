"""Task 5's tables in TurboMode.db: drift baselines per model version, the drift log, retraining flags.

Writes are idempotent per session: a session's drift_monitoring rows are replaced whole, and a flag
is keyed by (session, model version), so rerunning a session neither duplicates rows nor raises a
second flag; a flag keeps the status it has (a resolved flag stays resolved).
"""

from __future__ import annotations

import datetime as dt
from contextlib import closing
from dataclasses import dataclass

import pandas as pd

from turbomode_dagster.storage.turbomode_db import TurboModeDB, sqlite_values

MONITORING_COLUMNS = (
    "as_of_date", "model_version", "feature", "kind", "rows", "psi", "kl_divergence", "ks_statistic",
    "ks_pvalue", "threshold", "kl_threshold", "ks_threshold", "status",
)  # fmt: skip


@dataclass(frozen=True)
class RetrainFlag:
    """One row of retrain_flags."""

    flag_id: str
    as_of_date: str
    model_version: str
    reason: str
    status: str
    resolved_by: str | None = None


def flag_id(as_of_date: str, model_version: str) -> str:
    """The key of the flag a session raises against a model version (also the sensor's run key)."""
    return f"drift-{as_of_date}-{model_version}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class DriftLog:
    """Drift baselines, monitoring rows and retraining flags in one TurboMode DB."""

    def __init__(self, db: TurboModeDB):
        self.db = db

    def store_baseline(self, model_version: str, baseline_json: str) -> None:
        """Keep a model version's baseline (the same version always has the same baseline)."""
        with self.db.writing() as con:
            con.execute(
                "INSERT INTO drift_baselines (model_version, baseline) VALUES (?, ?) "
                "ON CONFLICT (model_version) DO UPDATE SET baseline = excluded.baseline "
                "WHERE baseline IS NOT excluded.baseline",
                (model_version, baseline_json),
            )

    def baseline(self, model_version: str) -> str | None:
        """The stored baseline JSON of a model version, if it has one."""
        with closing(self.db.connect_read_write()) as con:
            row = con.execute("SELECT baseline FROM drift_baselines WHERE model_version = ?", (model_version,))
            found = row.fetchone()
        return found[0] if found else None

    def delete_baselines_except(self, keep: frozenset[str] | set[str]) -> list[str]:
        """Remove the baselines of every model version not in `keep`; returns the versions removed."""
        with self.db.writing() as con:
            stored = [version for (version,) in con.execute("SELECT model_version FROM drift_baselines")]
            removed = sorted(version for version in stored if version not in keep)
            con.executemany("DELETE FROM drift_baselines WHERE model_version = ?", [(v,) for v in removed])
        return removed

    def replace_session(self, as_of_date: str, rows: pd.DataFrame, flag_reason: str | None) -> RetrainFlag | None:
        """Replace a session's drift rows and set its flag: raised (kept if already there) or withdrawn."""
        versions = set(rows["model_version"])
        if len(versions) != 1:
            raise ValueError(f"one session's drift rows must be for one model version, got {sorted(versions)}")
        (version,) = versions
        records = [sqlite_values(r) for r in rows.loc[:, list(MONITORING_COLUMNS)].itertuples(index=False)]
        key = flag_id(as_of_date, version)
        with self.db.writing() as con:
            con.execute("DELETE FROM drift_monitoring WHERE as_of_date = ?", (as_of_date,))
            con.executemany(
                f"INSERT INTO drift_monitoring ({', '.join(MONITORING_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(MONITORING_COLUMNS))})",
                records,
            )
            if flag_reason is None:
                con.execute("DELETE FROM retrain_flags WHERE flag_id = ? AND status = 'open'", (key,))
                return None
            con.execute(
                "INSERT INTO retrain_flags (flag_id, as_of_date, model_version, reason, status, raised_at) "
                "VALUES (?, ?, ?, ?, 'open', ?) ON CONFLICT (flag_id) DO NOTHING",
                (key, as_of_date, version, flag_reason, _now()),
            )
            row = con.execute(
                "SELECT flag_id, as_of_date, model_version, reason, status, resolved_by FROM retrain_flags "
                "WHERE flag_id = ?",
                (key,),
            ).fetchone()
        return RetrainFlag(*row)

    def recent_rows(self, day: str, sessions: int) -> pd.DataFrame:
        """drift_monitoring rows of the last `sessions` sessions up to `day`, for the recent-sessions picture."""
        with closing(self.db.connect_read_write()) as con:
            return pd.read_sql_query(
                "SELECT * FROM drift_monitoring WHERE as_of_date IN (SELECT DISTINCT as_of_date FROM drift_monitoring "
                "WHERE as_of_date <= ? ORDER BY as_of_date DESC LIMIT ?) ORDER BY as_of_date, feature",
                con,
                params=(day, sessions),
            )

    def open_flags(self) -> list[RetrainFlag]:
        """Flags no retraining has resolved yet, oldest first."""
        with closing(self.db.connect_read_write()) as con:
            rows = con.execute(
                "SELECT flag_id, as_of_date, model_version, reason, status, resolved_by FROM retrain_flags "
                "WHERE status = 'open' ORDER BY as_of_date, flag_id"
            ).fetchall()
        return [RetrainFlag(*row) for row in rows]

    def resolve_flags(self, new_version: str) -> list[str]:
        """Mark every open flag raised against another version as resolved by `new_version`."""
        with self.db.writing() as con:
            keys = [
                r[0]
                for r in con.execute(
                    "SELECT flag_id FROM retrain_flags WHERE status = 'open' AND model_version != ?", (new_version,)
                )
            ]
            con.executemany(
                "UPDATE retrain_flags SET status = 'resolved', resolved_by = ?, resolved_at = ? WHERE flag_id = ?",
                [(new_version, _now(), key) for key in keys],
            )
        return keys
