"""Walk-forward folds over trading dates, purged and embargoed so no label window leaks across a split.

A sample dated t carries the label of the return over trading dates (t, t + horizon]: its span is
[t, t + horizon] on the axis of the panel's unique sorted dates. A validation block [s, e] spans
[s, e + horizon]. A training date is kept only if its span misses the block's span: before the block
that means t < s - horizon (the purge), after it t > e + horizon + embargo (purge plus an embargo
against slow features). Walk-forward training uses only dates before the block; `train_after=True`
also trains on the purged, embargoed dates after it (blocked cross-validation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    """One split: the trading dates to train on and the contiguous block of dates to validate on."""

    number: int
    train_dates: np.ndarray
    valid_dates: np.ndarray

    def split(self, sample_dates: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of the training and the validation samples among `sample_dates`."""
        values = _datetimes(sample_dates)
        train = np.flatnonzero(np.isin(values, self.train_dates))
        valid = np.flatnonzero(np.isin(values, self.valid_dates))
        return train, valid


def date_axis(dates: pd.Series | np.ndarray) -> np.ndarray:
    """The unique trading dates, sorted, as datetime64[ns]: the axis `horizon` counts along."""
    return np.unique(_datetimes(dates))


def walk_forward_folds(
    dates: pd.Series | np.ndarray,
    n_folds: int,
    horizon: int,
    embargo: int | None = None,
    min_train_dates: int | None = None,
    train_after: bool = False,
) -> list[Fold]:
    """Split the dates after a warm-up into `n_folds` contiguous validation blocks, in time order.

    The first block starts `min_train_dates + horizon` dates in (default: an equal share of the dates
    per fold plus one for warm-up), so the first fold trains on `min_train_dates` purged dates; every
    later date is validated exactly once. `embargo` (default `horizon`) only matters with
    `train_after`.
    """
    axis = date_axis(dates)
    embargo = horizon if embargo is None else embargo
    if n_folds < 1 or horizon < 0 or embargo < 0:
        raise ValueError("n_folds must be >= 1 and horizon, embargo >= 0")
    if min_train_dates is None:
        min_train_dates = (len(axis) - horizon) // (n_folds + 1)
    first = min_train_dates + horizon
    if min_train_dates < 1 or len(axis) - first < n_folds:
        raise ValueError(
            f"{len(axis)} dates cannot give {n_folds} folds after {min_train_dates} training dates "
            f"and a {horizon}-date purge"
        )
    folds = []
    for number, block in enumerate(np.array_split(np.arange(first, len(axis)), n_folds)):
        start, stop = int(block[0]), int(block[-1])
        train = np.arange(0, start - horizon)
        if train_after:
            train = np.concatenate([train, np.arange(stop + horizon + embargo + 1, len(axis))])
        folds.append(Fold(number, axis[train], axis[block]))
    return folds


def _datetimes(dates: pd.Series | np.ndarray) -> np.ndarray:
    """Dates as a datetime64[ns] array, so membership tests compare like with like."""
    return pd.to_datetime(np.asarray(dates)).values.astype("datetime64[ns]")
