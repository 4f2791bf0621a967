"""Task 4's core: backtest the ensemble (and each base learner) on its out-of-fold probabilities.

Every decision comes from a model that never saw that date: `oof_predictions` holds, per walk-forward
fold, probabilities from models fitted before the fold. The strategy, the buy-and-hold benchmarks
and the chance baseline all run on the same sessions (the ensemble's out-of-fold dates), the same
prices and the same costs; each is simulated gross (no costs) and net (fees and slippage), and
scored in total and per fold. The result is the four TurboMode.db tables, keyed by run id
`<session>/<strategy>` so a rerun of a session replaces exactly its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from turbomode_dagster.backtest.benchmarks import EQUAL_WEIGHT, equal_weight_buy_and_hold, index_buy_and_hold
from turbomode_dagster.backtest.chance import ChanceBaseline, permutation
from turbomode_dagster.backtest.engine import (
    BacktestResult,
    PricePanel,
    decided_weights,
    price_panel,
    simulate_panel,
)
from turbomode_dagster.backtest.metrics import drawdown, sharpe, summarize
from turbomode_dagster.backtest.strategy import StrategyParams, weight_grid
from turbomode_dagster.config import Settings

ENSEMBLE = "ensemble"
BENCHMARK_PREFIX = "benchmark:"
GROSS, NET = "gross", "net"
TOTAL = "total"
OOF_COLUMNS = ["symbol", "date", "model", "fold", "p_sell", "p_buy"]
PRICE_COLUMNS = ["symbol", "date", "open", "close"]
DEFAULT_EXIT_FRACTION = 0.8  # exit threshold, as a fraction of the entry threshold, when none is configured


@dataclass(frozen=True)
class BacktestParams:
    """Everything a backtest run depends on besides its data: stored with each run as its parameters."""

    strategy: StrategyParams
    fees_bps: float = 5.0
    slippage_bps: float = 5.0
    initial_cash: float = 1_000_000.0
    benchmark_symbol: str = "SPY"
    chance_seeds: int = 20
    base_learners: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The parameters as flat JSON-ready data."""
        return {
            **self.strategy.to_dict(),
            "fees_bps": self.fees_bps,
            "slippage_bps": self.slippage_bps,
            "initial_cash": self.initial_cash,
            "benchmark_symbol": self.benchmark_symbol,
            "chance_seeds": self.chance_seeds,
        }


def params_from_settings(settings: Settings) -> BacktestParams:
    """The backtest section with its defaults resolved: entry at scanner.min_probability, hold labels.horizon."""
    section = settings.backtest
    entry = section.entry_probability or settings.scanner.min_probability
    exit_ = section.exit_probability or DEFAULT_EXIT_FRACTION * entry
    if exit_ > entry:
        raise ValueError(
            f"backtest.exit_probability {exit_} is above the entry threshold {entry} "
            "(scanner.min_probability, as backtest.entry_probability is not set)"
        )
    strategy = StrategyParams(
        entry_probability=entry,
        exit_probability=exit_,
        min_holding_sessions=section.min_holding_sessions or settings.labels.horizon,
        max_positions=section.max_positions,
        weighting=section.weighting,
    )
    return BacktestParams(
        strategy=strategy,
        fees_bps=section.fees_bps,
        slippage_bps=section.slippage_bps,
        initial_cash=section.initial_cash,
        benchmark_symbol=section.benchmark_symbol,
        chance_seeds=section.chance_seeds,
        base_learners=section.base_learners,
    )


@dataclass(frozen=True)
class Leg:
    """One simulated strategy or benchmark: its gross and net results."""

    name: str
    gross: BacktestResult
    net: BacktestResult


@dataclass(frozen=True)
class BacktestReport:
    """A session's backtest: every leg, its metrics (strategy, scope, basis, metric, value), the chance baseline."""

    session: str
    model_version: str | None
    params: BacktestParams
    period: tuple[str, str]
    benchmark: str
    legs: dict[str, Leg]
    metrics: pd.DataFrame
    chance: ChanceBaseline
    folds: dict[int, tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=dict)

    def metric(self, strategy: str, name: str, basis: str = NET, scope: str = TOTAL) -> float:
        """One stored metric value."""
        rows = self.metrics
        hit = rows[(rows["strategy"] == strategy) & (rows["metric"] == name) & (rows["basis"] == basis)]
        hit = hit[hit["scope"] == scope]
        if hit.empty:
            raise KeyError(f"no {basis} {name} for {strategy} ({scope})")
        return float(hit["value"].iloc[0])

    def run_id(self, strategy: str) -> str:
        """The run id of a leg: the session and the strategy, so a rerun replaces it."""
        return f"{self.session}/{strategy}"

    def equity(self, strategy: str) -> pd.DataFrame:
        """date, strategy (net equity), benchmark (the benchmark's net equity), drawdown of the strategy."""
        net = self.legs[strategy].net.equity
        return pd.DataFrame(
            {
                "date": net.index,
                "strategy": net.to_numpy(),
                "benchmark": self.legs[self.benchmark].net.equity.reindex(net.index).to_numpy(),
                "drawdown": drawdown(net).to_numpy(),
            }
        )

    def tables(self) -> dict[str, pd.DataFrame]:
        """The rows of backtest_runs, backtest_results, backtest_equity and backtest_trades for this session.

        Every leg keeps its run, metrics and equity curve; trades are stored for the ensemble only, the
        strategy that is traded: every leg's orders were three quarters of TurboMode.db's growth per
        night at 83 symbols, and nothing reads the other legs' (their metrics already summarise them).
        """
        names = list(self.legs)
        parameters = self.params.to_dict()
        runs = pd.DataFrame(
            {
                "run_id": [self.run_id(n) for n in names],
                "session": self.session,
                "model_version": self.model_version,
                "strategy": names,
                "parameters": [{**parameters, "benchmark": self.benchmark} for _ in names],
                "period": f"{self.period[0]}..{self.period[1]}",
            }
        )
        results = self.metrics.assign(run_id=self.metrics["strategy"].map(self.run_id))
        equity = pd.concat([self.equity(n).assign(run_id=self.run_id(n)) for n in names], ignore_index=True)
        trades = self.legs[ENSEMBLE].net.orders.assign(run_id=self.run_id(ENSEMBLE))
        return {
            "backtest_runs": runs,
            "backtest_results": results[["run_id", "scope", "basis", "metric", "value"]],
            "backtest_equity": equity[["run_id", "date", "strategy", "benchmark", "drawdown"]],
            "backtest_trades": trades[["run_id", "date", "symbol", "shares", "price", "fee"]],
        }


def run_backtest(
    prices: pd.DataFrame,
    oof: pd.DataFrame,
    params: BacktestParams,
    session: str,
    model_version: str | None = None,
) -> BacktestReport:
    """Backtest the ensemble, each base learner, the benchmarks and the chance baseline for `session`.

    `prices`: symbol, date, open, close (total-return basis); `oof`: the oof_predictions frame. The
    prices become one sessions x symbols panel and every leg's signals grids on it, so the 30-odd
    simulations share one layout instead of each pivoting a long frame (memory and time at 3,000 symbols).
    """
    oof = _checked_oof(oof)
    is_ensemble = (oof["model"] == ENSEMBLE).to_numpy()
    dates = np.sort(oof.loc[is_ensemble, "date"].unique())
    first, last = pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])
    prices = _checked_prices(prices, first, last)
    panel = price_panel(prices)
    signals = _Signals(panel, oof, dates)
    models = [ENSEMBLE]
    if params.base_learners:
        models += sorted(m for m in signals.models() if m != ENSEMBLE)
    legs = {model: _leg(model, panel, signals.weights(model, params.strategy), params) for model in models}
    equal = BENCHMARK_PREFIX + EQUAL_WEIGHT
    legs[equal] = _leg(equal, panel, decided_weights(equal_weight_buy_and_hold(prices, first), panel), params)
    index_weights = index_buy_and_hold(prices, params.benchmark_symbol, first)
    benchmark = equal
    if index_weights is not None:
        benchmark = BENCHMARK_PREFIX + params.benchmark_symbol
        legs[benchmark] = _leg(benchmark, panel, decided_weights(index_weights, panel), params)
    ensemble = oof.loc[is_ensemble, ["fold", "date"]]
    folds = {int(f): (pd.Timestamp(d.min()), pd.Timestamp(d.max())) for f, d in ensemble.groupby("fold")["date"]}
    chance = _chance(panel, signals, params, legs[ENSEMBLE])
    metrics = _metrics(legs, benchmark, folds, chance)
    return BacktestReport(
        session=session,
        model_version=model_version,
        params=params,
        period=(f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"),
        benchmark=benchmark,
        legs=legs,
        metrics=metrics,
        chance=chance,
        folds=folds,
    )


@dataclass(frozen=True)
class _Grids:
    """One model's signals on the price panel: p_buy, p_sell and which cells have a row."""

    p_buy: np.ndarray
    p_sell: np.ndarray
    has_row: np.ndarray

    def relabelled(self, seed: int, unpriced: np.ndarray) -> _Grids:
        """The grids with the symbols that have rows relabelled by the seed's bijection over them (in
        sorted order, as `chance.permuted_symbols` does), then cells without a price row dropped."""
        present = np.flatnonzero(self.has_row.any(axis=0))
        moved = present[permutation(len(present), seed)]
        out = []
        for grid, empty in ((self.p_buy, np.nan), (self.p_sell, np.nan), (self.has_row, False)):
            shuffled = np.full_like(grid, empty)
            shuffled[:, moved] = grid[:, present]
            shuffled[unpriced] = empty
            out.append(shuffled)
        return _Grids(*out)


class _Signals:
    """Each model's out-of-fold probabilities laid out on the price panel, one model's grids at a time.

    Only rows on the ensemble's dates with a price row count, so every leg decides on the same
    sessions and never on a bar that does not exist. A model's grids are built when its weights are
    asked for (the ensemble's are kept for the chance baseline), so nine models' grids are never all
    held at once.
    """

    def __init__(self, panel: PricePanel, oof: pd.DataFrame, ensemble_dates: np.ndarray) -> None:
        self.panel = panel
        day = _positions(panel.dates, oof["date"])
        column = _positions(panel.symbols, oof["symbol"])
        kept = (day >= 0) & (column >= 0)
        kept[kept] = np.isin(panel.dates, ensemble_dates)[day[kept]] & ~np.isnan(panel.close[day[kept], column[kept]])
        rows = np.flatnonzero(kept)
        self._cell = day[rows].astype(np.int64) * len(panel.symbols) + column[rows]
        model = oof["model"].astype("category")
        self._names = [str(name) for name in model.cat.categories]
        self._model = model.cat.codes.to_numpy()[rows]
        self._p_buy = oof["p_buy"].to_numpy(dtype=float)[rows]
        self._p_sell = oof["p_sell"].to_numpy(dtype=float)[rows]
        self._ensemble: _Grids | None = None

    def models(self) -> list[str]:
        """The models with at least one usable row, in the order their rows first come."""
        return [self._names[code] for code in pd.unique(self._model)]

    def grids(self, model: str) -> _Grids:
        """`model`'s grids; a (symbol, date) with two of its rows is named."""
        if model == ENSEMBLE and self._ensemble is not None:
            return self._ensemble
        mine = self._model == self._names.index(model)
        cell = self._cell[mine]
        _refuse_duplicates(model, cell, self.panel)
        shape = self.panel.close.shape
        layout = [np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=bool)]
        for grid, values in zip(layout, (self._p_buy[mine], self._p_sell[mine], True), strict=True):
            grid.ravel()[cell] = values
        grids = _Grids(*layout)
        if model == ENSEMBLE:
            self._ensemble = grids
        return grids

    def weights(self, model: str, strategy: StrategyParams, seed: int | None = None) -> np.ndarray:
        """The strategy's decided weights on `model`'s signals, as `simulate_panel` takes them; with a
        seed, on the signals with their symbols permuted (the chance baseline)."""
        grids = self.grids(model)
        if seed is not None:
            grids = grids.relabelled(seed, np.isnan(self.panel.close))
        sessions = np.flatnonzero(grids.has_row.any(axis=1))
        decided = np.full(self.panel.close.shape, np.nan)
        decided[sessions] = weight_grid(grids.p_buy[sessions], grids.p_sell[sessions], strategy)
        # a holding kept through a session without a bar places no order there: it could not trade
        decided[(np.nan_to_num(decided) != 0) & np.isnan(self.panel.close)] = np.nan
        return decided


def _positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Each value's position in `index` (-1 when absent) as int32; a categorical column is looked up by its
    categories, so 52 M rows cost one code lookup rather than 52 M hashed strings."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        lookup = np.append(index.get_indexer(values.cat.categories), -1).astype(np.int32)
        return lookup[values.cat.codes.to_numpy()]  # code -1 (a missing value) takes the appended -1
    return index.get_indexer(values).astype(np.int32)


def _refuse_duplicates(model: str, cell: np.ndarray, panel: PricePanel) -> None:
    counts = np.bincount(cell)
    if (counts > 1).any():
        day, column = divmod(int(np.argmax(counts > 1)), len(panel.symbols))
        raise ValueError(
            f"oof_predictions has more than one {model} row for {panel.symbols[column]} on {panel.dates[day]:%Y-%m-%d}"
        )


def _leg(name: str, panel: PricePanel, decided: np.ndarray, params: BacktestParams) -> Leg:
    gross = simulate_panel(panel, decided, initial_cash=params.initial_cash)
    return Leg(name, gross, _net(panel, decided, params))


def _net(panel: PricePanel, decided: np.ndarray, params: BacktestParams) -> BacktestResult:
    """The simulation after the configured fees and slippage."""
    return simulate_panel(
        panel, decided, fees_bps=params.fees_bps, slippage_bps=params.slippage_bps, initial_cash=params.initial_cash
    )


def _chance(panel: PricePanel, signals: _Signals, params: BacktestParams, real: Leg) -> ChanceBaseline:
    """Net Sharpe of the strategy on `chance_seeds` symbol permutations of the ensemble's signals."""
    sharpes = [
        sharpe(_net(panel, signals.weights(ENSEMBLE, params.strategy, seed), params).equity)
        for seed in range(params.chance_seeds)
    ]
    return ChanceBaseline(np.array(sharpes), sharpe(real.net.equity))


def _metrics(
    legs: dict[str, Leg],
    benchmark: str,
    folds: dict[int, tuple[pd.Timestamp, pd.Timestamp]],
    chance: ChanceBaseline,
) -> pd.DataFrame:
    """Long metrics frame: every leg, in total and per fold, gross and net, against the benchmark."""
    rows = []
    scopes = {TOTAL: None, **{f"fold {n}": window for n, window in folds.items()}}
    for name, leg in legs.items():
        for basis in (GROSS, NET):
            result = getattr(leg, basis)
            reference = getattr(legs[benchmark], basis).equity
            for scope, window in scopes.items():
                start, end = window or (None, None)
                values = summarize(result, reference, start=start, end=end)
                rows += [(name, scope, basis, metric, value) for metric, value in values.items()]
    rows += [(ENSEMBLE, TOTAL, NET, metric, value) for metric, value in chance.summary().items()]
    return pd.DataFrame(rows, columns=["strategy", "scope", "basis", "metric", "value"])


def _checked_oof(oof: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in OOF_COLUMNS if c not in oof.columns]
    if missing:
        raise ValueError(f"oof_predictions lacks columns {missing}; it needs {OOF_COLUMNS}")
    frame = oof  # not copied: at 3,000 symbols it is 52 M rows
    if not pd.api.types.is_datetime64_any_dtype(frame["date"]):
        frame = frame.assign(date=pd.to_datetime(frame["date"]))
    if not (frame["model"] == ENSEMBLE).any():
        raise ValueError(
            "oof_predictions holds no ensemble rows (model == 'ensemble'): train with at least two folds first"
        )
    return frame


def _checked_prices(prices: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    missing = [c for c in PRICE_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(f"prices lack columns {missing}; they need {PRICE_COLUMNS}")
    frame = prices.loc[:, PRICE_COLUMNS].assign(date=pd.to_datetime(prices["date"]))
    frame = frame[(frame["date"] >= first) & (frame["date"] <= last)]
    if frame.empty:
        raise ValueError(f"no prices between {first:%Y-%m-%d} and {last:%Y-%m-%d}, the out-of-fold period")
    return frame.sort_values(["date", "symbol"]).reset_index(drop=True)
