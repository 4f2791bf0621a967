"""PSI, KL divergence and the two-sample KS test of a current window against a reference.

PSI and KL compare bin proportions on the reference's bins (see `binning`). A bin empty on one side
would make both infinite, so every proportion is floored at EPSILON and the proportions are
renormalised to sum to 1 (on both sides): identical windows give exactly 0, and KL and PSI stay
non-negative. KS compares the raw finite values with `scipy.stats.ks_2samp` (two-sided, its default
exact-or-asymptotic method); its statistic D is the effect size we alert on, since at panel sizes its
p-value falls below 0.05 for shifts too small to matter.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

EPSILON = 1e-4


def proportions(counts: np.ndarray) -> np.ndarray:
    """Bin proportions (last axis), floored at EPSILON and renormalised; an empty window is all-missing."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(axis=-1, keepdims=True)
    share = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    floored = np.maximum(share, EPSILON)
    return floored / floored.sum(axis=-1, keepdims=True)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray | float:
    """Population stability index: sum of (q - p) * ln(q / p) with p the reference, q the current."""
    p, q = proportions(reference_counts), proportions(current_counts)
    value = np.sum((q - p) * np.log(q / p), axis=-1)
    return float(value) if np.ndim(value) == 0 else value


def kl_divergence(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray | float:
    """KL(current || reference) on the same bins: sum of q * ln(q / p)."""
    p, q = proportions(reference_counts), proportions(current_counts)
    value = np.sum(q * np.log(q / p), axis=-1)
    return float(value) if np.ndim(value) == 0 else value


def ks_test(reference_values: np.ndarray, current_values: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and p-value over finite values; (nan, nan) when a side has none."""
    reference = np.asarray(reference_values, dtype=np.float64)
    current = np.asarray(current_values, dtype=np.float64)
    reference, current = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if reference.size == 0 or current.size == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(current, reference)
    return float(result.statistic), float(result.pvalue)
