"""The long-only strategy over one model's out-of-fold probabilities: target weights per session.

At each session's close a symbol not held enters when the scanner's BUY rule holds at the entry
threshold (`signals.signal_classes`), best p_buy - p_sell first, while fewer than `max_positions`
are held. A held symbol is kept at least `min_holding_sessions` sessions, then exits once p_buy
falls below the exit threshold, p_sell exceeds p_buy, or it has no prediction that session; an exit
threshold below the entry threshold gives hysteresis. Held names are weighted equally or by
conviction (p_buy - p_sell), summing to one. SELL signals are not shorted: the engine is long-only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from turbomode_dagster.signals import BUY, signal_classes

WEIGHT_COLUMNS = ["symbol", "date", "weight"]
PROBABILITY_COLUMNS = ["symbol", "date", "p_sell", "p_buy"]
CONVICTION_FLOOR = 1e-3  # a held name whose conviction has faded keeps a sliver until it may exit


@dataclass(frozen=True)
class StrategyParams:
    """The rule's knobs, resolved (no defaults left to look up)."""

    entry_probability: float
    exit_probability: float
    min_holding_sessions: int
    max_positions: int
    weighting: Literal["equal", "conviction"] = "equal"

    def __post_init__(self) -> None:
        if not 0 < self.exit_probability <= self.entry_probability < 1:
            raise ValueError(
                f"need 0 < exit_probability ({self.exit_probability}) <= entry_probability "
                f"({self.entry_probability}) < 1"
            )
        if self.min_holding_sessions < 1 or self.max_positions < 1:
            raise ValueError("min_holding_sessions and max_positions must be at least 1")
        if self.weighting not in ("equal", "conviction"):
            raise ValueError(f"weighting must be 'equal' or 'conviction', not {self.weighting!r}")

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON-ready data."""
        return asdict(self)


def target_weights(probabilities: pd.DataFrame, params: StrategyParams) -> pd.DataFrame:
    """symbol, date, weight for every (session, symbol) of `probabilities` (symbol, date, p_sell, p_buy).

    The weight is decided at that session's close from that session's probabilities and earlier
    decisions only; a symbol not held has weight 0.
    """
    missing = [c for c in PROBABILITY_COLUMNS if c not in probabilities.columns]
    if missing:
        raise KeyError(f"probabilities lack columns {missing}")
    frame = probabilities.assign(date=pd.to_datetime(probabilities["date"]))
    duplicated = frame.duplicated(["symbol", "date"])
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise ValueError(f"more than one probability row for {first['symbol']} on {first['date']:%Y-%m-%d}")
    p_buy = frame.pivot(index="date", columns="symbol", values="p_buy").sort_index().sort_index(axis=1)
    p_sell = frame.pivot(index="date", columns="symbol", values="p_sell").reindex_like(p_buy)
    weights = weight_grid(p_buy.to_numpy(), p_sell.to_numpy(), params)
    grid = pd.DataFrame(weights, index=p_buy.index, columns=p_buy.columns)
    long = grid.stack().rename("weight").reset_index()
    return long[WEIGHT_COLUMNS].sort_values(["date", "symbol"], kind="mergesort").reset_index(drop=True)


def weight_grid(p_buy: np.ndarray, p_sell: np.ndarray, params: StrategyParams) -> np.ndarray:
    """Sessions x symbols weights from the probability grids (NaN: no prediction), session by session.

    `target_weights` on grids: the rows are the decision sessions in order, the columns the symbols in
    order (ties in conviction go to the earlier column); a column that is all NaN never holds.
    """
    n_dates, n_symbols = p_buy.shape
    weights = np.zeros((n_dates, n_symbols))
    held = np.zeros(n_symbols, dtype=bool)
    age = np.zeros(n_symbols, dtype=int)  # sessions since the entry decision
    for t in range(n_dates):
        buy, sell = p_buy[t], p_sell[t]
        conviction = buy - sell
        age[held] += 1
        fading = ~(buy >= params.exit_probability) | (sell > buy)  # NaN (no prediction) counts as fading
        keep = held & ((age < params.min_holding_sessions) | ~fading)
        entering = (signal_classes(sell, buy, params.entry_probability) == BUY) & ~keep
        slots = params.max_positions - int(keep.sum())
        chosen = np.zeros(n_symbols, dtype=bool)
        if slots > 0 and entering.any():
            candidates = np.flatnonzero(entering)
            ranked = candidates[np.argsort(-conviction[candidates], kind="stable")]
            chosen[ranked[:slots]] = True
        age[chosen] = 0
        held = keep | chosen
        if held.any():
            weights[t] = _sized(held, conviction, params.weighting)
    return weights


def _sized(held: np.ndarray, conviction: np.ndarray, weighting: str) -> np.ndarray:
    """Weights over the held names summing to one: equal, or proportional to conviction."""
    if weighting == "equal":
        raw = held.astype(float)
    else:
        raw = np.where(held, np.clip(np.nan_to_num(conviction, nan=0.0), CONVICTION_FLOOR, None), 0.0)
    return raw / raw.sum()
