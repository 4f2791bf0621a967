"""Measure the volatility-regime check alone on many seeds of the sample market.

    python benchmarks/drift_volatility_seeds.py [--seeds 7-22] [--out benchmarks/results/drift_volatility.json]

For each seed, the planted tests' market (83 symbols, planted effect 0.3) is built stationary, with
volatility x2 from 2020-06-01 and with the planted effect switched off from then; the check's level
is calibrated on the training window (2014-06..2019-06) twice, as shipped (the largest |change|) and
at the 99th percentile of |change| as PSI's levels are. Reported per seed and level: whether the
check alone would flag (exceeded on `drift.persistence` sessions running) on the stationary year
(250 sessions from 2019-08-01) or in the 80 sessions after the effect is switched off, and after how
many sessions it flags the x2 shift. The README's figures for the choice of level come from here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd

from turbomode_dagster.config import Drift
from turbomode_dagster.drift.volatility import (
    VolatilityReference,
    calibrate_volatility,
    dispersion_change,
    session_dispersion,
    volatility_check,
)
from turbomode_dagster.sources.sample import RegimeShift
from turbomode_dagster_tests.drift.planted import SHIFT_DAY, TRAINING, market

STATIONARY_FROM, STATIONARY_SESSIONS, AFTER_SHIFT = "2019-08-01", 250, 80
PERSISTENCE = Drift().persistence


def _first_flag(reference: VolatilityReference, dispersion: pd.Series, days: list[str]) -> int | None:
    """1-based position in `days` of the first session whose last PERSISTENCE checks are all exceeded."""
    run = 0
    for position, day in enumerate(days):
        run = run + 1 if volatility_check(reference, dispersion, pd.Timestamp(day))["exceeded"] else 0
        if run >= PERSISTENCE:
            return position + 1
    return None


def _seed(seed: int) -> dict[str, dict[str, int | float | None]]:
    start = dt.date.fromisoformat(SHIFT_DAY)
    stationary = market(None, seed)
    dispersion = {
        "stationary": session_dispersion(stationary.features),
        "x2": session_dispersion(market(RegimeShift(start, volatility_multiplier=2.0), seed).features),
        "effect_off": session_dispersion(market(RegimeShift(start, planted_effect=0.0), seed).features),
    }
    training = dispersion["stationary"].loc[TRAINING[0] : TRAINING[1]]
    shipped = calibrate_volatility(training)
    changes = dispersion_change(training, shipped.recent_sessions, shipped.before_sessions).abs().dropna()
    q99 = VolatilityReference(shipped.recent_sessions, shipped.before_sessions, float(changes.quantile(0.99)))
    levels = {"max": shipped, "q99": q99}
    sessions = stationary.sessions
    quiet = sessions[sessions.index(STATIONARY_FROM) :][:STATIONARY_SESSIONS]
    # A persistence run may start before the shift, so the shifted series is checked from PERSISTENCE - 1 before it.
    shift_at = sessions.index(SHIFT_DAY)
    around = sessions[shift_at - PERSISTENCE + 1 : shift_at + AFTER_SHIFT]
    out = {}
    for name, reference in levels.items():
        flagged = _first_flag(reference, dispersion["x2"], around)
        out[name] = {
            "level_ratio": round(math.exp(reference.level), 3),
            "stationary_flag": _first_flag(reference, dispersion["stationary"], quiet) is not None,
            "effect_off_flag": _first_flag(reference, dispersion["effect_off"], around) is not None,
            "x2_sessions_to_flag": None if flagged is None else flagged - (PERSISTENCE - 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7-22", help="first-last")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drift_volatility.json"))
    args = parser.parse_args()
    first, last = (int(part) for part in args.seeds.split("-"))
    results = {}
    for seed in range(first, last + 1):
        results[seed] = _seed(seed)
        print(seed, json.dumps(results[seed]), flush=True)
    summary = {
        name: {
            "stationary_years_flagged": sum(r[name]["stationary_flag"] for r in results.values()),
            "effect_off_flagged": sum(r[name]["effect_off_flag"] for r in results.values()),
            "x2_sessions_to_flag": sorted({r[name]["x2_sessions_to_flag"] for r in results.values()}, key=str),
            "seeds": len(results),
        }
        for name in ("max", "q99")
    }
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "per_seed": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
