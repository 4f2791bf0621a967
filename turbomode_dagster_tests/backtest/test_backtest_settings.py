"""The backtest config section: shipped defaults, bounds named by path, hysteresis enforced at load."""

from __future__ import annotations

import pytest

from turbomode_dagster.config import ConfigError, parse_settings
from turbomode_dagster_tests.conftest import patch_config, shipped_config


def test_the_shipped_defaults():
    backtest = parse_settings(shipped_config()).backtest
    assert (backtest.fees_bps, backtest.slippage_bps, backtest.chance_seeds) == (5.0, 5.0, 20)
    assert backtest.benchmark_symbol == "SPY"
    assert backtest.entry_probability is None and backtest.min_holding_sessions is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_positions", 0),
        ("fees_bps", -1),
        ("slippage_bps", 501),
        ("chance_seeds", 1),
        ("entry_probability", 1.0),
        ("weighting", "short"),
        ("benchmark_symbol", "spy"),
        ("leverage", 2),
    ],
)
def test_a_bad_field_is_named_by_its_path(field, value):
    with pytest.raises(ConfigError) as error:
        parse_settings(patch_config(shipped_config(), {f"backtest.{field}": value}))
    assert any(p.startswith(f"backtest.{field}:") for p in error.value.problems), error.value.problems


def test_an_exit_threshold_above_the_entry_threshold_is_refused():
    raw = patch_config(shipped_config(), {"backtest.entry_probability": 0.2, "backtest.exit_probability": 0.3})
    with pytest.raises(ConfigError, match=r"exit_probability 0\.3 is above entry_probability 0\.2"):
        parse_settings(raw)
