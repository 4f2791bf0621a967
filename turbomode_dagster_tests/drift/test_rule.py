"""The flag rule: persistence per column, the volatility-regime check, and defaults from the config."""

from __future__ import annotations

import math

import pandas as pd

from turbomode_dagster.config import Drift
from turbomode_dagster.drift.monitor import WINDOW_COLUMNS
from turbomode_dagster.drift.rule import FlagRule, decide

RULE = FlagRule.from_config(Drift())
QUIET = {"dispersion_ratio": 1.02, "dispersion_level": 1.4, "exceeded": False}
JUMP = {"dispersion_ratio": 1.9, "dispersion_level": 1.4, "exceeded": True}


def _window(exceeded: dict[str, bool]) -> pd.DataFrame:
    rows = [
        {
            "column": column,
            "kind": "prediction" if column.startswith("p_") else "feature",
            "rows": 100,
            "psi": 0.5 if hit else 0.01,
            "kl_divergence": 0.0,
            "ks_statistic": 0.0,
            "ks_pvalue": 1.0,
            "psi_threshold": 0.25,
            "kl_threshold": 0.125,
            "ks_threshold": 0.1,
            "exceeded": hit,
        }
        for column, hit in exceeded.items()
    ]
    return pd.DataFrame(rows, columns=WINDOW_COLUMNS)


CALM = _window({"a": False, "b": False, "c": False, "p_buy": False, "p_sell": False})


def test_the_rule_is_read_from_the_configs_drift_section() -> None:
    section = Drift(persistence=5, feature_share=0.5, min_matured_sessions=30, ic_drop_t=2.5)
    rule = FlagRule.from_config(section)
    assert (rule.persistence, rule.feature_share, rule.min_matured_sessions, rule.ic_drop_t) == (5, 0.5, 30, 2.5)


def test_calm_sessions_raise_no_flag() -> None:
    decision = decide([CALM] * 3, [QUIET] * 3, {}, RULE)
    assert not decision.flag and decision.reasons == [] and decision.volatility == QUIET


def test_a_volatility_check_exceeded_on_every_recent_session_flags_with_its_numbers() -> None:
    decision = decide([CALM] * 3, [JUMP] * 3, {}, RULE)
    assert decision.flag and decision.share_alerting == 0.0
    (reason,) = decision.reasons
    assert reason.startswith("volatility regime") and "x1.90" in reason and "x1.40" in reason


def test_a_volatility_check_exceeded_on_fewer_sessions_than_the_persistence_does_not_flag() -> None:
    assert not decide([CALM] * 3, [QUIET, JUMP, JUMP], {}, RULE).flag
    assert not decide([CALM] * 2, [JUMP] * 2, {}, RULE).flag, "the first sessions have no full persistence"


def test_features_on_alert_need_persistence_and_the_share() -> None:
    hot = _window({"a": True, "b": True, "c": False, "p_buy": False, "p_sell": False})
    decision = decide([hot] * 3, [QUIET] * 3, {}, RULE)
    assert decision.flag and decision.features_alerting == ["a", "b"]
    assert "67% of features on alert" in decision.reasons[0]
    assert not decide([CALM, hot, hot], [QUIET] * 3, {}, RULE).flag, "warn, not alert"


def test_matured_performance_flags_only_with_enough_sessions() -> None:
    drop = {"n_dates": 20.0, "rank_ic": 0.05, "oos_rank_ic": 0.2, "ic_drop_t": -3.5}
    assert "matured rank IC 0.050" in decide([CALM] * 3, [QUIET] * 3, drop, RULE).reasons[0]
    assert not decide([CALM] * 3, [QUIET] * 3, {**drop, "n_dates": 19.0}, RULE).flag
    assert not decide([CALM] * 3, [QUIET] * 3, {**drop, "ic_drop_t": math.nan}, RULE).flag
