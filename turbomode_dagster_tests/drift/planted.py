"""Planted regimes on the sample market for the drift tests: one trained champion, features under shifts.

The default 83-symbol universe, planted effect 0.3, seed 7 (the shipped market) unless a test asks for
another seed. Each seed's champion is a small XGBoost stack trained walk-forward on 2014-06..2019-06,
its baseline built as training builds it; monitoring starts in July 2019. Markets and champions are
built once per test session (lru_cache).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from turbomode_dagster.config import Drift
from turbomode_dagster.drift.baseline import DriftBaseline, build_baseline, monitored_features
from turbomode_dagster.drift.rule import FlagRule
from turbomode_dagster.drift.session import SessionDrift, evaluate_sessions
from turbomode_dagster.features import FEATURE_COLUMNS, compute_features, make_labels, training_samples
from turbomode_dagster.models.ensemble import ENSEMBLE, FittedEnsemble, predict, train_ensemble
from turbomode_dagster.models.learners import LearnerSpec
from turbomode_dagster.prices import adjusted_bars
from turbomode_dagster.sources.sample import RegimeShift, SampleSource
from turbomode_dagster.universe import DEFAULT_UNIVERSE

SYMBOLS = sorted(DEFAULT_UNIVERSE)
FIRST, LAST = dt.date(2013, 1, 2), dt.date(2021, 3, 31)
TRAINING = ("2014-06-02", "2019-06-28")
SHIFT_DAY = "2020-06-01"
HORIZON = 5
WINDOW = 20
PERFORMANCE_SESSIONS = 60
LEARNERS = [LearnerSpec.from_dict({"name": "hist", "kind": "xgboost", "params": {"n_estimators": 60, "max_depth": 3}})]


@dataclass(frozen=True)
class Market:
    """Features and labels of one (possibly shifted) market, every session from FIRST to LAST."""

    features: pd.DataFrame
    labels: pd.DataFrame

    @property
    def sessions(self) -> list[str]:
        return sorted(self.features["date"].dt.strftime("%Y-%m-%d").unique())


@dataclass(frozen=True)
class Champion:
    ensemble: FittedEnsemble
    baseline: DriftBaseline


SEED = 7


@lru_cache(maxsize=8)
def market(shift: RegimeShift | None = None, seed: int = SEED) -> Market:
    batch = SampleSource(seed=seed, planted_effect=0.3, regime_shift=shift).fetch(SYMBOLS, FIRST, LAST)
    bars = adjusted_bars(batch.bars, batch.splits, batch.dividends)
    bars["date"] = pd.to_datetime(bars["date"])
    columns = ["symbol", "date", "open", "high", "low", "close", "volume", "close_raw"]
    features = compute_features(
        bars[columns], sectors=batch.metadata[["symbol", "sector"]], fundamentals=batch.fundamentals
    )
    return Market(features, make_labels(bars[columns], HORIZON))


@lru_cache(maxsize=2)
def champion(seed: int = SEED) -> Champion:
    """Trained on the unshifted market's training window; baseline as the training asset stores it."""
    stationary = market(None, seed)
    dates = stationary.features["date"]
    window = stationary.features[(dates >= TRAINING[0]) & (dates <= TRAINING[1])]
    samples = training_samples(window, stationary.labels)
    result = train_ensemble(samples, LEARNERS, horizon=HORIZON, n_folds=3, seed=0)
    scored = result.oof[(result.oof["model"] == ENSEMBLE) & (result.oof["fold"] >= result.folds[1].number)]
    skill = result.metrics.loc[ENSEMBLE, ["rank_ic", "rank_ic_se", "log_loss"]].to_dict()
    baseline = build_baseline("planted", samples, monitored_features(FEATURE_COLUMNS), scored, skill, WINDOW, seed=0)
    return Champion(result.ensemble, baseline)


def drift(
    shift: RegimeShift | None, days: list[str], rule: FlagRule | None = None, seed: int = SEED
) -> list[SessionDrift]:
    """The champion's drift decisions on `days` of the market of `seed` under `shift`."""
    world, model = market(shift, seed), champion(seed)
    return evaluate_sessions(
        model.baseline,
        world.features,
        world.labels,
        lambda rows: predict(model.ensemble, rows),
        days,
        rule or FlagRule.from_config(Drift()),
        HORIZON,
        PERFORMANCE_SESSIONS,
    )
