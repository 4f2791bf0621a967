"""The volatility-regime check: dispersion by hand, the change statistic, its level, and what it sees."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.drift.volatility import (
    FLOOR,
    MIN_SYMBOLS,
    VolatilityReference,
    calibrate_volatility,
    dispersion_change,
    session_dispersion,
    volatility_check,
)

SESSIONS = pd.to_datetime(calendar.sessions("2018-01-02", "2021-12-31"))


def _panel(returns: np.ndarray) -> pd.DataFrame:
    """A (session x symbol) matrix of one-day returns as feature rows."""
    n_sessions, n_symbols = returns.shape
    return pd.DataFrame(
        {
            "date": np.repeat(SESSIONS[:n_sessions], n_symbols),
            "symbol": np.tile([f"S{i:02d}" for i in range(n_symbols)], n_sessions),
            "ret_1d": returns.ravel(),
        }
    )


def test_dispersion_is_the_median_absolute_deviation_across_symbols_on_each_session() -> None:
    day1 = np.array([-0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07])  # median 0.02
    day2 = 5 * day1 + 0.3  # a common move changes nothing, a x5 spread multiplies it by 5
    frame = _panel(np.vstack([day1, day2]))
    dispersion = session_dispersion(frame)
    assert list(dispersion.index) == list(SESSIONS[:2])
    assert math.exp(dispersion.iloc[0]) == pytest.approx(0.03)  # |x - 0.02| sorted: 0, .01, .01, ... median .03
    assert dispersion.iloc[1] - dispersion.iloc[0] == pytest.approx(math.log(5))


def test_missing_returns_are_ignored_and_a_thin_or_flat_session_has_no_dispersion() -> None:
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.01, size=(3, MIN_SYMBOLS + 2))
    frame = _panel(returns)
    with_gaps = frame.copy()
    with_gaps.loc[0, "ret_1d"], with_gaps.loc[1, "ret_1d"] = np.nan, np.inf
    assert session_dispersion(with_gaps).iloc[1:].equals(session_dispersion(frame).iloc[1:])
    thin = frame.assign(ret_1d=frame["ret_1d"].where(frame["symbol"] < "S03", np.nan))
    assert session_dispersion(thin).isna().all(), f"fewer than {MIN_SYMBOLS} returns give no dispersion"
    assert session_dispersion(frame.assign(ret_1d=0.01)).isna().all()


def test_the_change_is_recent_mean_minus_the_mean_before_it() -> None:
    log_dispersion = pd.Series(np.r_[np.zeros(60), np.full(5, math.log(2.0))], index=SESSIONS[:65])
    change = dispersion_change(log_dispersion, recent=5, before=60)
    assert change.iloc[:64].isna().all(), "a full 65-session reach is needed"
    assert change.iloc[64] == pytest.approx(math.log(2.0))
    shorter = dispersion_change(log_dispersion.iloc[:61], recent=1, before=60)
    assert shorter.iloc[60] == pytest.approx(math.log(2.0))
    assert dispersion_change(log_dispersion.iloc[:64], recent=5, before=59).iloc[63] == pytest.approx(
        4 * math.log(2.0) / 5
    )


def test_the_level_is_the_largest_change_inside_the_reference_never_below_the_floor() -> None:
    rng = np.random.default_rng(1)
    noisy = pd.Series(rng.normal(0, 0.2, size=400), index=SESSIONS[:400])
    reference = calibrate_volatility(noisy)
    changes = dispersion_change(noisy, 5, 60).abs()
    assert reference == VolatilityReference(5, 60, float(changes.max()))
    assert calibrate_volatility(pd.Series(0.0, index=SESSIONS[:400])).level == FLOOR
    assert calibrate_volatility(noisy.iloc[:30]).level == FLOOR, "too short to calibrate: the floor"


def test_a_check_needs_every_session_it_reads_and_counts_a_fall_like_a_rise() -> None:
    reference = VolatilityReference(5, 60, math.log(1.3))
    calm = pd.Series(0.0, index=SESSIONS[:70])
    halved = pd.concat([calm, pd.Series(math.log(0.5), index=SESSIONS[70:75])])
    check = volatility_check(reference, halved, SESSIONS[74])
    assert check["exceeded"] and check["dispersion_ratio"] == pytest.approx(0.5)
    assert check["dispersion_level"] == pytest.approx(1.3)
    assert not volatility_check(reference, calm, SESSIONS[69])["exceeded"]
    early = volatility_check(reference, halved, SESSIONS[40])
    assert math.isnan(early["dispersion_ratio"]) and not early["exceeded"]
    assert math.isnan(volatility_check(reference, calm, SESSIONS[80])["dispersion_ratio"]), "no dispersion that day"


def _market(n_sessions: int, idiosyncratic: np.ndarray, seed: int) -> np.ndarray:
    """Returns of 60 symbols: a common factor whose volatility swings x0.55..x1.8, and idiosyncratic noise."""
    rng = np.random.default_rng(seed)
    betas = rng.uniform(0.6, 1.4, size=60)
    factor_vol = 0.012 * np.exp(0.6 * np.sin(np.arange(n_sessions) / 40.0))
    factor = factor_vol * rng.standard_normal(n_sessions)
    return factor[:, None] * betas[None, :] + idiosyncratic[:, None] * rng.standard_normal((n_sessions, 60))


def test_common_factor_regimes_stay_quiet_and_a_doubling_of_every_symbols_volatility_is_seen_at_once() -> None:
    steady = np.full(900, 0.012)
    reference = calibrate_volatility(session_dispersion(_panel(_market(900, steady, seed=2))))
    assert reference.level < math.log(1.35), "the factor's x3 swing in volatility barely moves dispersion"
    doubled = np.r_[np.full(850, 0.012), np.full(50, 0.024)]
    dispersion = session_dispersion(_panel(_market(900, doubled, seed=3)))
    exceeded = [volatility_check(reference, dispersion, day)["exceeded"] for day in SESSIONS[780:900]]
    assert not any(exceeded[:70]), "no alarm in the ordinary sessions before the shift"
    assert all(exceeded[72:75]), "the second session of a x2 shift is already beyond the level"
