"""Alert levels calibrated on the reference itself, not textbook constants.

For each column, windows of the monitoring length (`window_sessions` sessions) are laid evenly over
the reference period (at most MAX_WINDOWS of them); each is compared with the whole reference exactly
as a current window will be, and a statistic's alert level is its QUANTILE over those windows, but
never below its floor. On panel data with volatility clustering, ordinary windows differ from the
pooled reference far more than i.i.d. samples would, which is why fixed thresholds cry wolf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from turbomode_dagster.drift.binning import bin_index
from turbomode_dagster.drift.statistics import kl_divergence, ks_test, psi

QUANTILE = 0.99
MAX_WINDOWS = 60


@dataclass(frozen=True)
class Thresholds:
    """The level above which each statistic counts as exceeded, for one column."""

    psi: float
    kl: float
    ks: float

    def exceeded(self, psi_value: float, kl_value: float, ks_value: float) -> bool:
        """True when any statistic is above its level (NaN never exceeds)."""
        return bool(psi_value > self.psi or kl_value > self.kl or ks_value > self.ks)


FLOORS = Thresholds(psi=0.25, kl=0.125, ks=0.1)


def window_ends(n_sessions: int, window: int, max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """Positions of the last session of each calibration window, evenly spread, at most `max_windows`."""
    if n_sessions < window:
        return np.empty(0, dtype=np.int64)
    count = min(max_windows, n_sessions - window + 1)
    return np.unique(np.rint(np.linspace(window - 1, n_sessions - 1, count)).astype(np.int64))


def calibrate(
    values: np.ndarray,
    session: np.ndarray,
    edges: np.ndarray,
    counts: np.ndarray,
    sample: np.ndarray,
    window: int,
    floors: Thresholds = FLOORS,
    quantile: float = QUANTILE,
    max_windows: int = MAX_WINDOWS,
) -> Thresholds:
    """Alert levels for one column from its reference rows (`session` numbers each row's session 0..n-1)."""
    n_sessions = int(session.max()) + 1 if len(session) else 0
    ends = window_ends(n_sessions, window, max_windows)
    if len(ends) == 0:
        return floors
    per_session = np.zeros((n_sessions, len(counts)), dtype=np.int64)
    np.add.at(per_session, (session, bin_index(values, edges)), 1)
    cumulative = np.vstack([np.zeros((1, len(counts)), dtype=np.int64), np.cumsum(per_session, axis=0)])
    windows = cumulative[ends + 1] - cumulative[ends + 1 - window]
    order = np.argsort(session, kind="stable")
    sorted_session, sorted_values = session[order], values[order]
    ks_values = []
    for end in ends:
        lo, hi = np.searchsorted(sorted_session, [end - window + 1, end + 1])
        ks_values.append(ks_test(sample, sorted_values[lo:hi])[0])
    return Thresholds(
        psi=_level(psi(counts, windows), floors.psi, quantile),
        kl=_level(kl_divergence(counts, windows), floors.kl, quantile),
        ks=_level(np.asarray(ks_values), floors.ks, quantile),
    )


def _level(statistics: np.ndarray, floor: float, quantile: float) -> float:
    finite = statistics[np.isfinite(statistics)]
    return float(max(floor, np.quantile(finite, quantile))) if finite.size else floor
