"""A session's drift result as rows of the drift_monitoring table, and the flag's reason text."""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.drift.session import SessionDrift

STATUS_ORDER = {"alert": 0, "warn": 1, "ok": 2}


def monitoring_rows(result: SessionDrift, model_version: str) -> pd.DataFrame:
    """drift_monitoring rows of the session, most severe first (alert, warn, ok; then by PSI / level)."""
    table = result.decision.statuses.rename(columns={"column": "feature", "psi_threshold": "threshold"})
    table = table.assign(as_of_date=result.day, model_version=model_version)
    ranked = table.assign(
        _status=table["status"].map(STATUS_ORDER), _severity=-(table["psi"] / table["threshold"]).fillna(0)
    )
    return ranked.sort_values(["_status", "_severity", "feature"]).drop(columns=["_status", "_severity"])


def flag_reason(result: SessionDrift) -> str | None:
    """The reason a flag is raised (every rule that fired, with its numbers), or None."""
    return "; ".join(result.decision.reasons) if result.decision.flag else None
