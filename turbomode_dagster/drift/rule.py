"""The flag rule: when drift is real enough to retrain the champion.

A column's status on a session: `alert` when a statistic exceeds its calibrated level in each of the
last `persistence` windows (the window ending at the session and the ones ending at the sessions
before it), `warn` when it exceeds in the latest window only or not in all of them, `ok` otherwise.
A retraining flag is raised when any of these holds:
- at least `feature_share` of the monitored features are on alert (the market moved away from the
  training window broadly, not in one family of columns: the momentum family alone, about a quarter
  of the features, moves together with every strong market trend and must not trip it);
- a prediction column (p_buy, p_sell) is on alert (the model's outputs moved);
- matured performance dropped: at least `min_matured_sessions` matured sessions and a rank-IC drop of
  more than `ic_drop_t` standard errors below the out-of-sample IC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FlagRule:
    """The thresholds of the flag decision (config section `drift`)."""

    persistence: int = 3
    feature_share: float = 0.35
    min_matured_sessions: int = 20
    ic_drop_t: float = 3.0


@dataclass(frozen=True)
class Decision:
    """Whether to flag, why (with the numbers), and each column's status."""

    flag: bool
    reasons: list[str]
    statuses: pd.DataFrame
    share_alerting: float
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


def decide(windows: Sequence[pd.DataFrame], performance: dict[str, float], rule: FlagRule = FlagRule()) -> Decision:
    """Apply the flag rule to the last windows' statistics and the matured-performance figures."""
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
    t = performance.get("ic_drop_t", math.nan)
    if performance.get("n_dates", 0) >= rule.min_matured_sessions and t < -rule.ic_drop_t:
        reasons.append(
            f"matured rank IC {performance['rank_ic']:.3f} over {performance['n_dates']:.0f} sessions vs "
            f"out-of-sample {performance['oos_rank_ic']:.3f}: {t:.1f} standard errors (rule: < -{rule.ic_drop_t:g})"
        )
    return Decision(bool(reasons), reasons, table, share, performance)
