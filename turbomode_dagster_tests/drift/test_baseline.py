"""Baselines: calibrated levels that fit the data, floors, a lossless round trip, a compact KS sample."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.drift.baseline import (
    SAMPLE_SIZE,
    DriftBaseline,
    Reference,
    build_baseline,
    monitored_features,
    pack_sample,
    reference_of,
    unpack_sample,
)
from turbomode_dagster.drift.calibration import FLOORS, window_ends
from turbomode_dagster.drift.monitor import compare
from turbomode_dagster.drift.volatility import calibrate_volatility, session_dispersion


def _panel(n_symbols: int, sessions: list[str], vol: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = np.repeat(pd.to_datetime(sessions), n_symbols)
    values = rng.standard_normal(len(dates)) * np.repeat(vol, n_symbols)
    return pd.DataFrame({"date": dates, "symbol": np.tile(np.arange(n_symbols), len(sessions)), "x": values})


SESSIONS = calendar.sessions("2020-01-02", "2023-12-29")


def test_an_iid_reference_gets_its_floors_and_a_clustered_one_gets_higher_levels() -> None:
    calm = _panel(50, SESSIONS, np.ones(len(SESSIONS)), seed=1)
    session = np.unique(calm["date"].to_numpy(), return_inverse=True)[1]
    iid = reference_of(calm["x"].to_numpy(), session, 20, seed=0)
    assert iid.thresholds == FLOORS, "i.i.d. windows of 1,000 rows never approach the floors"
    regimes = np.exp(0.6 * np.sin(np.arange(len(SESSIONS)) / 40.0))  # volatility swinging x0.55 .. x1.8
    clustered = _panel(50, SESSIONS, regimes, seed=1)
    levels = reference_of(clustered["x"].to_numpy(), session, 20, seed=0).thresholds
    assert levels.psi > 2 * FLOORS.psi and levels.ks > FLOORS.ks


def test_a_window_from_the_reference_itself_stays_below_its_levels() -> None:
    frame = _panel(50, SESSIONS, np.exp(0.6 * np.sin(np.arange(len(SESSIONS)) / 40.0)), seed=2)
    session = np.unique(frame["date"].to_numpy(), return_inverse=True)[1]
    reference = reference_of(frame["x"].to_numpy(), session, 20, seed=0)
    inside = frame[frame["date"].isin(pd.to_datetime(SESSIONS[500:520]))]
    assert not compare(reference, inside["x"].to_numpy())["exceeded"]
    doubled = compare(reference, 4 * inside["x"].to_numpy())
    assert doubled["exceeded"] and doubled["psi"] > reference.thresholds.psi


def test_calibration_windows_are_evenly_spread_and_bounded() -> None:
    ends = window_ends(1_000, 20, max_windows=60)
    assert len(ends) == 60 and ends[0] == 19 and ends[-1] == 999
    assert len(window_ends(25, 20)) == 6 and len(window_ends(10, 20)) == 0


def test_the_baseline_survives_a_json_round_trip_byte_for_byte() -> None:
    frame = _panel(12, SESSIONS[:300], np.ones(300), seed=3).assign(y=lambda f: f["x"].where(f["x"] > 0))
    frame["ret_1d"] = 0.01 * frame["x"]
    oof = frame.assign(p_sell=0.1, p_hold=0.8, p_buy=0.1 + 0.01 * np.tanh(frame["x"]))
    baseline = build_baseline("tm-x", frame, ["x", "y"], oof, {"rank_ic": 0.1, "rank_ic_se": 0.02}, 20, seed=0)
    text = baseline.to_json()
    assert DriftBaseline.from_json(text) == baseline and DriftBaseline.from_json(text).to_json() == text
    assert baseline.period == (SESSIONS[0], SESSIONS[299])
    assert baseline.class_mix["p_hold"] == pytest.approx(0.8)
    assert baseline.volatility == calibrate_volatility(session_dispersion(frame))
    assert build_baseline("tm-x", frame, ["x", "y"], oof, {"rank_ic": 0.1}, 20, seed=0).features == baseline.features


def test_price_unit_features_are_not_monitored() -> None:
    assert monitored_features(["rsi_14", "bb_upper_20", "atr_14", "atr_14_to_close", "macd"]) == [
        "rsi_14",
        "atr_14_to_close",
    ]


def test_an_unknown_baseline_format_says_to_retrain() -> None:
    with pytest.raises(ValueError, match="retrain"):
        DriftBaseline.from_json('{"format": 99}')
    with pytest.raises(ValueError, match="retrain"):
        DriftBaseline.from_json('{"format": 1}')  # stored before the volatility-regime check existed
    with pytest.raises(ValueError, match="retrain"):
        DriftBaseline.from_json('{"format": 2}')  # KS samples as JSON floats, before they were packed


def _full_precision_sample(values: np.ndarray, seed: int) -> np.ndarray:
    """The KS sample `reference_of` draws, before float32 rounding."""
    return np.sort(np.random.default_rng(seed).choice(values, SAMPLE_SIZE, replace=False))


def test_statistics_from_a_stored_baseline_match_the_full_precision_sample() -> None:
    frame = _panel(40, SESSIONS[:400], np.exp(0.5 * np.sin(np.arange(400) / 30.0)), seed=4)
    session = np.unique(frame["date"].to_numpy(), return_inverse=True)[1]
    values = 1_000 + 3 * frame["x"].to_numpy()  # a large level, so float32 rounding is as coarse as it gets
    reference = reference_of(values, session, 20, seed=0)
    stored = Reference.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert stored == reference
    exact = replace(reference, sample=tuple(_full_precision_sample(values, 0)))
    assert exact.sample != stored.sample, "the stored sample is float32, not the float64 draw"
    for current in (values[:1_000], 1_000 + 3.3 * frame["x"].to_numpy()[-1_000:] + 0.2):
        got, want = compare(stored, current), compare(exact, current)
        assert got["psi"] == want["psi"] and got["kl_divergence"] == want["kl_divergence"]
        # float32 keeps ~7 digits: a current value can only change sides of a reference value that close.
        assert got["ks_statistic"] == pytest.approx(want["ks_statistic"], abs=1e-3)
        assert got["ks_pvalue"] == pytest.approx(want["ks_pvalue"], rel=1e-2, abs=1e-12)


def test_a_packed_sample_is_a_tenth_of_its_json_and_restores_float32_exactly() -> None:
    sample = np.sort(np.random.default_rng(5).standard_normal(SAMPLE_SIZE))
    packed = pack_sample(sample)
    assert len(packed) < len(json.dumps(sample.tolist())) / 4
    assert unpack_sample(packed) == tuple(float(v) for v in sample.astype(np.float32))
    assert unpack_sample(pack_sample(())) == ()
