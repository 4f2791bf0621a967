"""PSI, KL and KS against hand-computed cases and scipy; bins stable under ties and missing values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from turbomode_dagster.drift.binning import bin_counts, bin_index, quantile_edges
from turbomode_dagster.drift.statistics import EPSILON, kl_divergence, ks_test, proportions, psi


def test_psi_and_kl_by_hand() -> None:
    reference, current = np.array([50, 30, 20, 0]), np.array([30, 30, 40, 0])
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.3, 0.3, 0.4])
    # The empty missing bin is EPSILON on both sides: it adds nothing, and renormalising scales the rest.
    scale = 1 / (1 + EPSILON)
    p, q = p * scale, q * scale
    expected_psi = (0.3 - 0.5) * scale * math.log(0.3 / 0.5) + (0.4 - 0.2) * scale * math.log(0.4 / 0.2)
    expected_kl = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert psi(reference, current) == pytest.approx(expected_psi, rel=1e-12)
    assert kl_divergence(reference, current) == pytest.approx(expected_kl, rel=1e-12)
    assert kl_divergence(reference, current) == pytest.approx(
        stats.entropy(proportions(current), proportions(reference)), rel=1e-12
    )


def test_an_empty_bin_on_one_side_is_finite_and_floored() -> None:
    value = psi(np.array([100, 0, 0]), np.array([0, 100, 0]))
    share = proportions(np.array([100, 0, 0]))
    assert share.sum() == pytest.approx(1.0) and share.min() == pytest.approx(EPSILON / (1 + 2 * EPSILON))
    assert np.isfinite(value) and value > 10


def test_identical_windows_give_zero() -> None:
    counts = np.array([12, 7, 0, 30, 5])
    assert psi(counts, counts) == 0.0
    assert kl_divergence(counts, counts) == 0.0
    values = np.random.default_rng(1).normal(size=500)
    assert ks_test(values, values) == (0.0, 1.0)


def test_psi_and_kl_are_never_negative() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.integers(0, 50, size=(200, 8)), rng.integers(0, 50, size=(200, 8))
    assert (psi(reference, current) >= 0).all() and (kl_divergence(reference, current) >= 0).all()


def test_ks_matches_scipy_and_ignores_missing_values() -> None:
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=2_000), rng.normal(0.2, 1.0, size=300)
    expected = stats.ks_2samp(current, reference)
    with_gaps = np.concatenate([current, [np.nan, np.inf, -np.inf]])
    assert ks_test(reference, with_gaps) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)
    assert all(math.isnan(v) for v in ks_test(reference, np.array([np.nan])))


def test_quantile_edges_give_ten_equal_bins_on_continuous_data() -> None:
    values = np.random.default_rng(0).normal(size=10_000)
    edges = quantile_edges(values)
    counts = bin_counts(values, edges)
    assert len(edges) == 9 and len(counts) == 11
    assert counts[-1] == 0 and (counts[:-1] == 1_000).all()


def test_ties_collapse_into_one_edge_and_land_in_one_bin() -> None:
    """A feature that is exactly 0 on 60% of rows: no duplicate edges, the zeros all in one bin."""
    values = np.concatenate([np.zeros(600), np.linspace(0.1, 1.0, 400)])
    edges = quantile_edges(values)
    assert len(np.unique(edges)) == len(edges) and (np.diff(edges) > 0).all()
    counts = bin_counts(values, edges)
    assert counts[0] == 600 and counts.sum() == 1_000
    assert (bin_counts(values, quantile_edges(values[::-1])) == counts).all(), "order must not matter"


def test_missing_values_have_their_own_bin_and_do_not_move_the_edges() -> None:
    values = np.random.default_rng(2).normal(size=1_000)
    with_missing = np.concatenate([values, [np.nan] * 250, [np.inf]])
    assert (quantile_edges(with_missing) == quantile_edges(np.concatenate([values, [np.inf]]))).all()
    counts = bin_counts(with_missing, quantile_edges(values))
    assert counts[-1] == 251 and counts[:-1].sum() == 1_000
    assert psi(bin_counts(values, quantile_edges(values)), counts) > 0.1, "a jump in missing values is drift"


def test_outer_bins_are_open() -> None:
    edges = quantile_edges(np.arange(100.0))
    counts = bin_counts(np.array([-1e300, 1e300]), edges)
    assert counts[0] == 1 and counts[-2] == 1
    assert list(bin_index(np.array([-1e300, np.nan, 1e300]), edges)) == [0, len(edges) + 1, len(edges)]


def test_an_all_missing_reference_has_only_the_missing_bin() -> None:
    edges = quantile_edges(np.full(10, np.nan))
    assert len(edges) == 0 and list(bin_counts(np.full(10, np.nan), edges)) == [0, 10]
