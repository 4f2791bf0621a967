"""The volatility-regime check: did the cross-sectional dispersion of daily returns jump?

A 20-session distribution window is slow to see a change in volatility, and a volatility feature's
level swings with the common factor's regimes (about 2.5x inside the sample market's training
window), so a market-wide x2 shift hides among them. The dispersion of one session's returns across
symbols (median absolute deviation of `ret_1d` from its cross-sectional median) removes the common
factor and averages the idiosyncratic volatility of every symbol, so it is steady in ordinary times
and doubles when every symbol's volatility does. The statistic is a change, not a level: the mean log
dispersion of the last RECENT_SESSIONS sessions minus that of the BEFORE_SESSIONS sessions before
them, so a slow drift in level (judged by the distribution statistics) does not count and a jump
does. Its alert level is the largest |change| over every such window inside the training period (the
99th percentile, as for PSI, let one stationary year in five alarm: those windows come in long
correlated runs), never below FLOOR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

RETURN_COLUMN = "ret_1d"
RECENT_SESSIONS = 5
BEFORE_SESSIONS = 60
MIN_SYMBOLS = 10  # fewer finite returns on a session: no dispersion for it
FLOOR = math.log(1.1)  # a change of dispersion below 10% is never called a regime shift


@dataclass(frozen=True)
class VolatilityReference:
    """The check's windows and its calibrated level (|change of log dispersion|)."""

    recent_sessions: int
    before_sessions: int
    level: float

    @property
    def sessions(self) -> int:
        """How many sessions, up to and including the checked one, the check reads."""
        return self.recent_sessions + self.before_sessions


def session_dispersion(frame: pd.DataFrame) -> pd.Series:
    """Log cross-sectional dispersion of each session's `ret_1d` (index: date, ascending).

    NaN for a session with fewer than MIN_SYMBOLS finite returns or no spread at all.
    """
    returns = pd.DataFrame({"date": pd.to_datetime(frame["date"]), "r": frame[RETURN_COLUMN].astype(np.float64)})
    returns = returns[np.isfinite(returns["r"])]
    by_session = returns.groupby("date")["r"]
    deviation = (returns["r"] - by_session.transform("median")).abs()
    mad = deviation.groupby(returns["date"]).median()
    counts = by_session.size()
    usable = (counts >= MIN_SYMBOLS) & (mad > 0)
    return np.log(mad.where(usable)).sort_index()


def dispersion_change(log_dispersion: pd.Series, recent: int, before: int) -> pd.Series:
    """At each session: mean log dispersion of the last `recent` sessions minus that of the `before` before them.

    NaN unless every one of those sessions has a dispersion.
    """
    latest = log_dispersion.rolling(recent, min_periods=recent).mean()
    earlier = log_dispersion.shift(recent).rolling(before, min_periods=before).mean()
    return latest - earlier


def calibrate_volatility(
    log_dispersion: pd.Series, recent: int = RECENT_SESSIONS, before: int = BEFORE_SESSIONS, floor: float = FLOOR
) -> VolatilityReference:
    """The check's level from the reference sessions' log dispersion: the largest |change| in it, at least `floor`."""
    changes = dispersion_change(log_dispersion, recent, before).abs().dropna()
    level = max(floor, float(changes.max())) if len(changes) else floor
    return VolatilityReference(recent, before, level)


def volatility_check(reference: VolatilityReference, log_dispersion: pd.Series, end: pd.Timestamp) -> dict[str, float]:
    """The change at session `end` as a ratio of dispersions (NaN without enough sessions), its level as a
    ratio (a fall counts as much as a rise), and whether it is exceeded."""
    upto = log_dispersion[log_dispersion.index <= end].iloc[-reference.sessions :]
    change = math.nan
    if len(upto) == reference.sessions and upto.index[-1] == end:
        change = float(dispersion_change(upto, reference.recent_sessions, reference.before_sessions).iloc[-1])
    return {
        "dispersion_ratio": math.exp(change),
        "dispersion_level": math.exp(reference.level),
        "exceeded": bool(abs(change) > reference.level),
    }
