"""Retention of TurboMode.db's per-night rows: drift baselines and backtests.

A new model version and a new backtest arrive every night, so without retention TurboMode.db grows
by both for ever. A version's drift baseline is removed when model retention removes its artifacts
(`retention.models_to_keep` decides: the champion, the newest versions and the models behind the
newest scanned sessions keep theirs), since drift is only ever judged against a version that can
still score. A session's backtest re-runs over the whole out-of-fold window, so only the newest
`keep_sessions` sessions' backtests are kept. The pages freed are reused by the following nights'
writes, and the next VACUUM gives them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from turbomode_dagster.maintenance.retention import ModelsToKeep
from turbomode_dagster.storage.drift_log import DriftLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB


@dataclass(frozen=True)
class RowsOutcome:
    """Rows one retention step removed from TurboMode.db, per table, and what they belonged to."""

    step: str
    rows: dict[str, int]
    removed: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        """Rows removed over every table."""
        return sum(self.rows.values())


def prune_baselines(db: TurboModeDB, keep: ModelsToKeep) -> RowsOutcome:
    """Remove the drift baselines of the model versions whose artifacts retention removes."""
    removed = DriftLog(db).delete_baselines_except(keep.kept)
    return RowsOutcome("drift baselines", {"drift_baselines": len(removed)}, tuple(removed))


def prune_backtests(db: TurboModeDB, keep_sessions: int) -> RowsOutcome:
    """Remove the backtests of sessions older than the newest `keep_sessions`."""
    return RowsOutcome("backtests", db.delete_backtests_before_newest(keep_sessions))
