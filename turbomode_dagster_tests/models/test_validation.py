"""Walk-forward folds: ordered, each validation date once, and no label window crossing a split."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.models.validation import date_axis, walk_forward_folds

HORIZON = 5


def panel_dates(n_dates: int = 200, n_symbols: int = 3) -> pd.Series:
    """A (date, symbol) panel's date column: each trading date repeated once per symbol."""
    return pd.Series(np.repeat(pd.bdate_range("2021-01-04", periods=n_dates).values, n_symbols))


def positions(axis: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Where each date sits on the trading-date axis."""
    return np.searchsorted(axis, dates)


def overlaps_validation(axis: np.ndarray, train_dates: np.ndarray, valid_dates: np.ndarray, horizon: int) -> bool:
    """Whether any training span [t, t + h] meets the validation span [first, last + h]."""
    train, valid = positions(axis, train_dates), positions(axis, valid_dates)
    first, last = valid.min(), valid.max()
    return bool(np.any((train <= last + horizon) & (train + horizon >= first)))


def test_folds_are_ordered_contiguous_and_cover_each_validation_date_once():
    dates = panel_dates()
    axis = date_axis(dates)
    folds = walk_forward_folds(dates, n_folds=4, horizon=HORIZON, min_train_dates=40)
    assert [f.number for f in folds] == [0, 1, 2, 3]
    blocks = [positions(axis, f.valid_dates) for f in folds]
    for block in blocks:
        assert np.array_equal(block, np.arange(block[0], block[-1] + 1))
    assert all(a[-1] < b[0] for a, b in itertools.pairwise(blocks))
    validated = np.concatenate(blocks)
    assert np.array_equal(validated, np.arange(40 + HORIZON, len(axis)))
    assert len(np.unique(validated)) == len(validated)


def test_training_is_before_the_block_purged_by_the_horizon():
    dates = panel_dates()
    axis = date_axis(dates)
    folds = walk_forward_folds(dates, n_folds=4, horizon=HORIZON, min_train_dates=40)
    assert len(folds[0].train_dates) == 40
    for fold in folds:
        train, valid = positions(axis, fold.train_dates), positions(axis, fold.valid_dates)
        assert np.array_equal(train, np.arange(0, valid[0] - HORIZON))
        # A sample dated t is labelled by returns over (t, t + h]: none of them reach the block.
        assert train.max() + HORIZON < valid[0]
        assert not overlaps_validation(axis, fold.train_dates, fold.valid_dates, HORIZON)


def test_an_unpurged_split_would_fail_the_overlap_check():
    dates = panel_dates()
    axis = date_axis(dates)
    leaky = walk_forward_folds(dates, n_folds=4, horizon=0, min_train_dates=40)
    assert all(overlaps_validation(axis, f.train_dates, f.valid_dates, HORIZON) for f in leaky)


def test_training_after_the_block_is_purged_and_embargoed():
    dates = panel_dates()
    axis = date_axis(dates)
    folds = walk_forward_folds(dates, n_folds=4, horizon=HORIZON, embargo=7, min_train_dates=40, train_after=True)
    for fold in folds:
        train, valid = positions(axis, fold.train_dates), positions(axis, fold.valid_dates)
        after = train[train > valid[-1]]
        if fold.number < 3:
            assert after.min() == valid[-1] + HORIZON + 7 + 1
        assert not overlaps_validation(axis, fold.train_dates, fold.valid_dates, HORIZON)
    assert len(folds[-1].train_dates) == positions(axis, folds[-1].valid_dates)[0] - HORIZON


def test_split_returns_row_positions_of_a_panel():
    dates = panel_dates(n_dates=60, n_symbols=4)
    fold = walk_forward_folds(dates, n_folds=2, horizon=HORIZON)[1]
    train, valid = fold.split(dates)
    assert set(dates.iloc[train]) == set(pd.to_datetime(fold.train_dates))
    assert set(dates.iloc[valid]) == set(pd.to_datetime(fold.valid_dates))
    assert len(valid) == 4 * len(fold.valid_dates)
    assert not set(train) & set(valid)


def test_default_warm_up_is_an_equal_share():
    folds = walk_forward_folds(panel_dates(n_dates=105), n_folds=4, horizon=HORIZON)
    assert len(folds[0].train_dates) == (105 - HORIZON) // 5


def test_too_few_dates_is_refused():
    with pytest.raises(ValueError, match="cannot give"):
        walk_forward_folds(panel_dates(n_dates=12), n_folds=4, horizon=HORIZON, min_train_dates=5)
