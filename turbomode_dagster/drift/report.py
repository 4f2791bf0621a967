"""A session's drift result as rows of the drift_monitoring table, their severity, and the flag's reason text."""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.drift.session import SessionDrift

STATUS_ORDER = {"alert": 0, "warn": 1, "ok": 2}


def severity(frame: pd.DataFrame) -> pd.Series:
    """Each row's worst statistic as a multiple of its level: max(PSI/level, KL/level, KS/level); 1 = alert level.

    The one measure of how far a column drifted: it orders the table and the picture.
    """
    ratios = [
        frame["psi"] / frame["threshold"],
        frame["kl_divergence"] / frame["kl_threshold"],
        frame["ks_statistic"] / frame["ks_threshold"],
    ]
    return pd.concat(ratios, axis=1).max(axis=1, skipna=True)


def monitoring_rows(result: SessionDrift, model_version: str) -> pd.DataFrame:
    """drift_monitoring rows of the session, most severe first (alert, warn, ok; then by severity)."""
    table = result.decision.statuses.rename(columns={"column": "feature", "psi_threshold": "threshold"})
    table = table.assign(as_of_date=result.day, model_version=model_version)
    ranked = table.assign(_status=table["status"].map(STATUS_ORDER), _severity=-severity(table).fillna(0))
    return ranked.sort_values(["_status", "_severity", "feature"]).drop(columns=["_status", "_severity"])


def flag_reason(result: SessionDrift) -> str | None:
    """The reason a flag is raised (every rule that fired, with its numbers), or None."""
    return "; ".join(result.decision.reasons) if result.decision.flag else None
