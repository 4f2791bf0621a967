"""The chance baseline: the same strategy on signals whose symbols were randomly permuted.

Each seed relabels the symbols of the probability frame by one random bijection over the whole
period, then runs the unchanged strategy: every session holds as many positions, for as long and
with as much turnover as the real strategy, only in names the signals were not about. Where the
real strategy's net Sharpe ranks among the seeds says whether its skill beats luck.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PERCENTILES = (1, 5, 95, 99)


@dataclass(frozen=True)
class ChanceBaseline:
    """Net Sharpe ratios of the permuted strategies and where the real one ranks among them."""

    sharpes: np.ndarray
    real: float

    @property
    def seeds(self) -> int:
        """How many permutations were drawn."""
        return len(self.sharpes)

    @property
    def mean(self) -> float:
        """The mean net Sharpe of the permuted strategies."""
        return float(np.mean(self.sharpes))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100, linear interpolation) of the permuted strategies' net Sharpe."""
        return float(np.percentile(self.sharpes, q))

    @property
    def percentile_rank(self) -> float:
        """Percent of permuted strategies the real one beats (ties count half): 0..100."""
        below = np.sum(self.sharpes < self.real) + 0.5 * np.sum(self.sharpes == self.real)
        return float(100.0 * below / len(self.sharpes))

    def summary(self) -> dict[str, float]:
        """mean, p1, p5, p95, p99 and the real strategy's percentile rank, flat for storage."""
        out = {"chance_sharpe_mean": self.mean}
        out.update({f"chance_sharpe_p{q}": self.percentile(q) for q in PERCENTILES})
        out["chance_percentile"] = self.percentile_rank
        return out


def permutation(n: int, seed: int) -> np.ndarray:
    """The seed's bijection of n sorted symbols: position i is relabelled as symbol `permutation[i]`."""
    return np.random.default_rng(seed).permutation(n)


def permuted_symbols(probabilities: pd.DataFrame, seed: int) -> pd.DataFrame:
    """`probabilities` with its symbols relabelled by one random bijection (seeded, reproducible)."""
    symbols = np.array(sorted(probabilities["symbol"].unique()))
    shuffled = symbols[permutation(len(symbols), seed)]
    return probabilities.assign(symbol=probabilities["symbol"].map(dict(zip(symbols, shuffled, strict=True))))
