"""The flag rule on planted regimes: no false alarm on a stationary year, shifts caught, and how fast."""

from __future__ import annotations

import datetime as dt

import pytest

from turbomode_dagster.sources.sample import RegimeShift
from turbomode_dagster_tests.drift.planted import SHIFT_DAY, drift, market

pytestmark = pytest.mark.slow

STATIONARY_SESSIONS = 250
VOLATILITY_X2 = RegimeShift(dt.date.fromisoformat(SHIFT_DAY), volatility_multiplier=2.0)
EFFECT_OFF = RegimeShift(dt.date.fromisoformat(SHIFT_DAY), planted_effect=0.0)


def _after_shift(count: int) -> list[str]:
    sessions = market().sessions
    start = sessions.index(SHIFT_DAY)
    return sessions[start : start + count]


def _first_flag(results) -> int | None:
    return next((i for i, r in enumerate(results) if r.decision.flag), None)


def test_no_flag_on_250_consecutive_stationary_sessions() -> None:
    sessions = market().sessions
    start = sessions.index("2019-08-01")
    results = drift(None, sessions[start : start + STATIONARY_SESSIONS])
    flagged = [(r.day, r.decision.reasons) for r in results if r.decision.flag]
    assert flagged == []
    shares = [r.decision.share_alerting for r in results]
    print(f"stationary: most features on alert at once {max(shares):.0%}")


def test_a_volatility_x2_shift_is_flagged_soon_after_it_starts() -> None:
    results = drift(VOLATILITY_X2, _after_shift(25))
    first = _first_flag(results)
    assert first is not None, "a x2 volatility shift must be flagged"
    print(f"volatility x2: flagged {first + 1} sessions after the shift: {results[first].decision.reasons}")
    assert first + 1 <= 20
    assert results[-1].class_mix_change["p_buy"] > 0.02, "the champion expects more +5% weeks"


def test_a_planted_effect_switched_off_is_caught_by_matured_performance() -> None:
    """Feature distributions barely move (the effect is 5% of return variance); the skill does."""
    results = drift(EFFECT_OFF, _after_shift(80))
    first = _first_flag(results)
    assert first is not None, "losing the planted effect must be caught"
    reasons = results[first].decision.reasons
    print(f"effect off: flagged {first + 1} sessions after the shift: {reasons}")
    assert any("matured rank IC" in reason for reason in reasons)
    assert not any("features on alert" in reason for reason in reasons)
