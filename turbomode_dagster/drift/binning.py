"""Reference-quantile bins: interior edges from the reference, open outer bins, and a missing-value bin.

Bins are right-closed, `(e[i-1], e[i]]`, so a value equal to an edge always lands in the same bin;
tied quantiles (a feature that is often exactly 0) collapse into one edge, never an empty bin between
equal edges. Non-finite values (NaN, +-inf) count in the last, separate missing bin.
"""

from __future__ import annotations

import numpy as np

N_BINS = 10


def quantile_edges(reference: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Up to `n_bins - 1` distinct interior edges at the reference's quantiles (finite values only)."""
    values = np.asarray(reference, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: `len(edges) + 1` value bins (outer ones open), then the missing bin."""
    values = np.asarray(values, dtype=np.float64)
    missing = ~np.isfinite(values)
    index = np.searchsorted(edges, values[~missing], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(np.int64)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value (the missing bin is `len(edges) + 1`), for counting many windows at once."""
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(edges, values, side="left")
    return np.where(np.isfinite(values), index, len(edges) + 1)
