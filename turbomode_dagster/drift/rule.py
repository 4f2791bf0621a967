"""The flag rule: when drift is real enough to retrain the champion.

A column's status on a session: `alert` when a statistic exceeds its calibrated level in each of the
last `persistence` windows (the window ending at the session and the ones ending at the sessions
before it), `warn` when it exceeds in the latest window only or not in all of them, `ok` otherwise.
A retraining flag is raised when any of these holds:
- at least `feature_share` of the monitored features are on alert (the market moved away from the
  training window broadly, not in one family of columns: the momentum family alone, about a quarter
  of the features, moves together with every strong market trend and must not trip it);
- a prediction column (p_buy, p_sell) is on alert (the model's outputs moved);
- the volatility-regime check (`volatility`) is exceeded on each of the last `persistence` sessions
  (the cross-sectional dispersion of returns jumped or fell beyond anything the training window did);
- matured performance dropped: at least `min_matured_sessions` matured sessions and a rank-IC drop of
  more than `ic_drop_t` standard errors below the out-of-sample IC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from turbomode_dagster.config import Drift


@dataclass(frozen=True)
class FlagRule:
    """The thresholds of the flag decision; their defaults live in one place, the config section `drift`."""

    persistence: int
    feature_share: float
    min_matured_sessions: int
    ic_drop_t: float

    @classmethod
    def from_config(cls, drift: Drift) -> FlagRule:
        """The rule of a config's `drift` section."""
        return cls(drift.persistence, drift.feature_share, drift.min_matured_sessions, drift.ic_drop_t)


@dataclass(frozen=True)
class Decision:
    """Whether to flag, why (with the numbers), each column's status, the session's volatility check and
    the matured-performance figures."""

    flag: bool
    reasons: list[str]
    statuses: pd.DataFrame
    share_alerting: float
    volatility: dict[str, float] = field(default_factory=dict)
    performance: dict[str, float] = field(default_factory=dict)

    @property
    def features_alerting(self) -> list[str]:
        alert = self.statuses[(self.statuses["kind"] == "feature") & (self.statuses["status"] == "alert")]
        return list(alert["column"])


def statuses(windows: Sequence[pd.DataFrame], persistence: int) -> pd.DataFrame:
    """The latest window's statistics with each column's status; `windows` run oldest to latest."""
    latest = windows[-1].copy()
    recent = windows[-persistence:]
    exceeded = np.column_stack([w.set_index("column").loc[latest["column"], "exceeded"].to_numpy() for w in recent])
    persistent = exceeded.all(axis=1) & (len(recent) == persistence)
    latest["status"] = np.where(persistent, "alert", np.where(exceeded.any(axis=1), "warn", "ok"))
    return latest


def decide(
    windows: Sequence[pd.DataFrame],
    volatility: Sequence[dict[str, float]],
    performance: dict[str, float],
    rule: FlagRule,
) -> Decision:
    """Apply the flag rule to the last windows' statistics, the volatility checks of the same sessions
    (oldest first) and the matured-performance figures."""
    table = statuses(windows, rule.persistence)
    counted = table[table["kind"] == "feature"]
    share = float((counted["status"] == "alert").mean()) if len(counted) else 0.0
    reasons = []
    if share >= rule.feature_share:
        names = ", ".join(counted.loc[counted["status"] == "alert", "column"])
        reasons.append(f"{share:.0%} of features on alert (rule: >= {rule.feature_share:.0%}): {names}")
    predictions = table[(table["kind"] == "prediction") & (table["status"] == "alert")]
    for row in predictions.itertuples(index=False):
        reasons.append(f"prediction {row.column} on alert: PSI {row.psi:.3f} (level {row.psi_threshold:.3f})")
    latest = volatility[-1]
    recent = volatility[-rule.persistence :]
    if len(recent) == rule.persistence and all(check["exceeded"] for check in recent):
        reasons.append(
            f"volatility regime: return dispersion x{latest['dispersion_ratio']:.2f} against the sessions before, "
            f"beyond x{latest['dispersion_level']:.2f} (or its inverse) on {rule.persistence} sessions running"
        )
    t = performance.get("ic_drop_t", math.nan)
    if performance.get("n_dates", 0) >= rule.min_matured_sessions and t < -rule.ic_drop_t:
        reasons.append(
            f"matured rank IC {performance['rank_ic']:.3f} over {performance['n_dates']:.0f} sessions vs "
            f"out-of-sample {performance['oos_rank_ic']:.3f}: {t:.1f} standard errors (rule: < -{rule.ic_drop_t:g})"
        )
    return Decision(bool(reasons), reasons, table, share, dict(latest), performance)
