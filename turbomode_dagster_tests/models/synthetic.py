"""A synthetic panel of training samples with a switchable planted effect, for the model-core tests.

Each symbol follows a random walk of daily returns (1% volatility). Features dated t use only returns
up to t: `alpha` (an i.i.d. draw), `momentum` (the past five days' return), `volatility` (the past ten
days' standard deviation) and `noise`. With `effect` > 0 the next day's return gets
`effect * 1% * alpha`, so `alpha` predicts the forward return; with `effect` = 0 no feature does.
`leak=True` adds a `leak` column equal to the forward return itself.

`auc_tolerance` is how far from 0.5 a chance AUC may stray on a given set of labels; the honesty tests
on this panel and on the built-in sample market both use it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WARM_UP = 10
DAILY_VOL = 0.01
THRESHOLD = 0.015


def synthetic_samples(
    n_symbols: int = 30,
    n_dates: int = 500,
    horizon: int = 5,
    effect: float = 0.0,
    seed: int = 0,
    leak: bool = False,
) -> pd.DataFrame:
    """Training samples (symbol, date, features, fwd_return, label) for `n_dates` labelled dates."""
    rng = np.random.default_rng(seed)
    total = WARM_UP + n_dates + horizon
    dates = pd.bdate_range("2020-01-02", periods=total)
    alpha = rng.normal(size=(total, n_symbols))
    daily = rng.normal(0.0, DAILY_VOL, size=(total, n_symbols))
    daily[1:] += effect * DAILY_VOL * alpha[:-1]
    returns = pd.DataFrame(daily, index=dates)
    forward = returns[::-1].rolling(horizon).sum()[::-1].shift(-1)
    columns = {
        "alpha": pd.DataFrame(alpha, index=dates),
        "momentum": returns.rolling(5).sum(),
        "volatility": returns.rolling(WARM_UP).std(),
        "noise": pd.DataFrame(rng.normal(size=(total, n_symbols)), index=dates),
        "fwd_return": forward,
    }
    keep = dates[WARM_UP - 1 : WARM_UP - 1 + n_dates]
    frame = pd.DataFrame({name: values.loc[keep].to_numpy().ravel() for name, values in columns.items()}).assign(
        date=np.repeat(keep.values, n_symbols),
        symbol=np.tile([f"S{i:03d}" for i in range(n_symbols)], n_dates),
    )
    frame.loc[rng.random(len(frame)) < 0.02, "momentum"] = np.nan
    frame["label"] = np.select([frame["fwd_return"] <= -THRESHOLD, frame["fwd_return"] >= THRESHOLD], [0, 2], 1).astype(
        np.int8
    )
    if leak:
        frame["leak"] = frame["fwd_return"]
    features = ["alpha", "momentum", "volatility", "noise", *(["leak"] if leak else [])]
    return frame[["symbol", "date", *features, "fwd_return", "label"]]


def auc_tolerance(labels: np.ndarray, horizon: int) -> float:
    """Three standard errors of a chance AUC: Hanley-McNeil per class (the macro mean's SE is at most
    the largest), inflated by sqrt(horizon) because overlapping label windows make neighbouring dates'
    labels of a symbol correlated (a design effect of about `horizon`). `labels` may hold the three
    classes or any other set of at least two values (a binary target, say)."""
    labels = np.asarray(labels)
    errors = []
    for k in np.unique(labels):
        positives, negatives = np.sum(labels == k), np.sum(labels != k)
        errors.append(np.sqrt((positives + negatives + 1) / (12 * positives * negatives)))
    return 3 * np.sqrt(horizon) * max(errors)
