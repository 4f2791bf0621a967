"""The drift section and the sample market's regime shift, as the config declares them."""

from __future__ import annotations

import datetime as dt

import pytest

from turbomode_dagster.config import ConfigError, load_settings, parse_settings
from turbomode_dagster.sources.factory import build_source
from turbomode_dagster.sources.sample import RegimeShift, SampleSource
from turbomode_dagster_tests.conftest import patch_config, shipped_config


def problems_of(patches: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(patch_config(shipped_config(), patches))
    return caught.value.problems


def test_the_shipped_drift_rule() -> None:
    drift = load_settings().drift
    assert (drift.window_sessions, drift.persistence, drift.feature_share) == (20, 3, 0.35)
    assert (drift.min_matured_sessions, drift.performance_sessions, drift.ic_drop_t) == (20, 60, 3.0)
    assert load_settings().sources.sample.regime_shift is None


@pytest.mark.parametrize(
    ("patches", "path"),
    [
        ({"drift.window_sessions": 2}, "drift.window_sessions"),
        ({"drift.feature_share": 0}, "drift.feature_share"),
        ({"drift.persistence": True}, "drift.persistence"),
        ({"drift.min_matured_sessions": 100, "drift.performance_sessions": 50}, "drift"),
        ({"sources.sample.regime_shift": {"start_date": "2026-02-30"}}, "sources.sample.regime_shift.start_date"),
        (
            {"sources.sample.regime_shift": {"start_date": "2020-06-01", "volatility_multiplier": 0}},
            "sources.sample.regime_shift.volatility_multiplier",
        ),
        ({"sources.sample.regime_shift": {"volatility_multiplier": 2.0}}, "sources.sample.regime_shift.start_date"),
    ],
)
def test_bad_drift_settings_are_named_by_path(patches: dict, path: str) -> None:
    assert any(problem.startswith(path) for problem in problems_of(patches)), problems_of(patches)


def test_a_configured_regime_shift_reaches_the_sample_source(tmp_path) -> None:
    shift = {"start_date": "2020-06-01", "volatility_multiplier": 2.0, "planted_effect": 0.0}
    settings = parse_settings(patch_config(shipped_config(), {"sources.sample.regime_shift": shift}))
    source = build_source("sample", settings, tmp_path)
    assert isinstance(source, SampleSource)
    assert source.regime_shift == RegimeShift(dt.date(2020, 6, 1), 2.0, 0.0, 0.0)
