"""One session's drift check: the last windows against the champion's baseline, the volatility-regime
check, and matured performance.

Everything the decision needs is recomputed from the session's features, so a session can be checked
by hand at any time, whether or not training ran that night, and a rerun gives the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from turbomode_dagster.drift.baseline import DriftBaseline
from turbomode_dagster.drift.monitor import window_sessions, window_statistics
from turbomode_dagster.drift.performance import ic_drop_t, matured_skill
from turbomode_dagster.drift.rule import Decision, FlagRule, decide
from turbomode_dagster.drift.volatility import session_dispersion, volatility_check
from turbomode_dagster.models import PROBA_COLUMNS

Predict = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class SessionDrift:
    """The decision for one session, the windows it was made on (oldest first), and the change in class
    mix: the window's mean probability per class minus the out-of-fold mean of the baseline."""

    day: str
    decision: Decision
    windows: list[pd.DataFrame]
    class_mix_change: dict[str, float]


def evaluate_sessions(
    baseline: DriftBaseline,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    predict: Predict,
    days: list[str],
    rule: FlagRule,
    horizon: int,
    performance_sessions: int,
) -> list[SessionDrift]:
    """Drift of each session in `days`.

    `features` (symbol, date, ...) and `labels` (symbol, date, label, fwd_return) cover at least the
    windows and the matured sessions; `predict` gives p_sell/p_hold/p_buy per row. A window shared by
    consecutive sessions is computed once.
    """
    dates = pd.to_datetime(features["date"])
    sessions = sorted(dates.dt.strftime("%Y-%m-%d").unique())
    missing = sorted(set(days) - set(sessions))
    if missing:
        raise LookupError(f"no features for {', '.join(missing)}: ingest those sessions first")
    spans, matured = {}, {}
    ends = {day: sessions[: sessions.index(day) + 1][-rule.persistence :] for day in days}
    for day in days:
        for end in ends[day]:
            spans[end] = window_sessions(sessions, end, baseline.window_sessions)
        matured[day] = _matured_sessions(sessions, day, baseline.period[1], horizon)[-performance_sessions:]
    needed = pd.to_datetime(
        sorted({d for span in spans.values() for d in span} | {d for m in matured.values() for d in m})
    )
    rows = features[dates.isin(needed)].reset_index(drop=True)
    scored = pd.concat([rows, predict(rows)[list(PROBA_COLUMNS)].reset_index(drop=True)], axis=1)
    scored["date"] = pd.to_datetime(scored["date"])
    truth = labels.assign(date=pd.to_datetime(labels["date"]))[["symbol", "date", "label", "fwd_return"]]
    scored_truth = scored.merge(truth, on=["symbol", "date"], how="left")
    windows, mixes = {}, {}
    for end, span in spans.items():
        in_window = scored[scored["date"].isin(pd.to_datetime(span))]
        windows[end] = window_statistics(baseline, in_window, in_window)
        mixes[end] = {c: float(in_window[c].mean() - baseline.class_mix[c]) for c in PROBA_COLUMNS}
    volatility = _volatility_checks(baseline, features, dates, sessions, list(spans))
    results = []
    for day in days:
        performance = _performance(baseline, scored_truth, matured[day], horizon)
        recent = [windows[end] for end in ends[day]]
        checks = [volatility[end] for end in ends[day]]
        results.append(SessionDrift(day, decide(recent, checks, performance, rule), recent, mixes[day]))
    return results


def _volatility_checks(
    baseline: DriftBaseline, features: pd.DataFrame, dates: pd.Series, sessions: list[str], ends: list[str]
) -> dict[str, dict[str, float]]:
    """The volatility-regime check at each of `ends`, from the dispersion of the sessions it reads."""
    reach = baseline.volatility.sessions
    read = set()
    for end in ends:
        position = sessions.index(end)
        read.update(sessions[max(position + 1 - reach, 0) : position + 1])
    dispersion = session_dispersion(features[dates.isin(pd.to_datetime(sorted(read)))])
    return {end: volatility_check(baseline.volatility, dispersion, pd.Timestamp(end)) for end in ends}


def _matured_sessions(sessions: list[str], day: str, trained_until: str, horizon: int) -> list[str]:
    """Sessions after the training window whose `horizon`-session label window has closed by `day`."""
    closed = sessions[: max(sessions.index(day) + 1 - horizon, 0)]
    return [s for s in closed if s > trained_until]


def _performance(
    baseline: DriftBaseline, scored_truth: pd.DataFrame, matured: list[str], horizon: int
) -> dict[str, float]:
    """Matured skill beside the baseline's out-of-sample skill, and the IC drop in standard errors."""
    rows = scored_truth[scored_truth["date"].isin(pd.to_datetime(matured)) & scored_truth["label"].notna()]
    skill = matured_skill(rows, horizon)
    out_of_sample = {key: baseline.skill.get(key, math.nan) for key in ("rank_ic", "rank_ic_se")}
    return {
        **skill,
        "oos_rank_ic": out_of_sample["rank_ic"],
        "oos_log_loss": baseline.skill.get("log_loss", math.nan),
        "ic_drop_t": ic_drop_t(skill, out_of_sample) if skill["n_dates"] else math.nan,
    }
