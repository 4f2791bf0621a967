"""The panel layout: long daily bars as symbol × trading-row matrices, and windows that never cross symbols.

`Layout` orders the bars by (symbol, date) and numbers each symbol's bars 0, 1, 2, ...; a `Block`
holds a run of whole symbols as a matrix whose row i, column k is symbol i's k-th bar (shorter
symbols are NaN-padded at the end). Every lag, rolling window and recursive smoother runs along a
matrix row, so a symbol only ever sees its own bars: a late listing starts at column 0 with its own
NaN warm-up, and nothing is computed from another symbol's rows. Because rows are independent, the
host backend walks the panel in blocks of a few hundred thousand cells (vectorised within a block)
to stay in cache and bound memory; the GPU backend takes the whole panel as one block. Results do
not depend on the block size, bit for bit.

Windows count rows, i.e. the trading days present for that symbol, not calendar days: a halt or a
run of missing sessions (even a long one) is bridged as if the bars were consecutive, which is what
TA-Lib does on the same series. A window holding a NaN or infinite input is NaN; a recursive
smoother fed a NaN stays NaN from there on, as TA-Lib's recursion does, so bars are expected to be
complete. Every value at column k reads columns <= k only, row by row in a fixed order, so appending
later bars or other symbols changes no earlier value, bit for bit. `Layout.lag` with a negative
step (labels) is the one deliberate look-ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from turbomode_dagster.features.backend import Engine

KEY_COLUMNS = ("symbol", "date")
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
NS_PER_DAY = 86_400_000_000_000


class Layout:
    """Bars of many symbols in (symbol, date) order, with each bar's symbol code and row number."""

    def __init__(self, bars: pd.DataFrame, engine: Engine, columns: Sequence[str]) -> None:
        """Order `bars` (any row order) and load the value `columns`; duplicate (symbol, date) rows raise."""
        missing = [c for c in (*KEY_COLUMNS, *columns) if c not in bars.columns]
        if missing:
            raise ValueError(f"bars lack the columns {missing}")
        host = bars.loc[:, [*KEY_COLUMNS, *columns]]
        host = host.assign(date=pd.to_datetime(host["date"]).astype("datetime64[ns]"))
        if host["date"].isna().any():
            raise ValueError("bars have rows without a date")
        self.engine = engine
        self.xp = xp = engine.xp
        frame = engine.from_pandas(host)
        codes, symbols = frame["symbol"].factorize(sort=True)
        codes = xp.asarray(codes, dtype=xp.int64)
        if bool((codes < 0).any()):
            raise ValueError("bars have rows without a symbol")
        dates = xp.asarray(frame["date"].astype("int64").values)
        order = None if _is_sorted(codes, dates) else xp.lexsort(xp.stack([dates, codes]))
        if order is not None:
            codes, dates = codes[order], dates[order]
            if bool(((codes[1:] == codes[:-1]) & (dates[1:] == dates[:-1])).any()):
                raise ValueError("bars hold more than one row for some (symbol, date)")
        self.symbols = engine.index_to_host(symbols)
        self.codes, self.dates = codes, dates
        self.n_rows = int(codes.shape[0])
        self.starts = xp.searchsorted(codes, xp.arange(len(self.symbols) + 1))
        self.lengths = self.starts[1:] - self.starts[:-1]
        self.position = xp.arange(self.n_rows) - self.starts[:-1][codes]
        self._columns = {}
        for name in columns:
            values = engine.floats(frame[name])
            self._columns[name] = values if order is None else values[order]

    def column(self, name: str) -> Any:
        """An input column as float64 in (symbol, date) order; missing values are NaN."""
        return self._columns[name]

    def keys(self) -> pd.DataFrame:
        """The host (symbol, date) keys in output order."""
        codes = self.engine.to_host(self.codes)
        dates = self.engine.to_host(self.dates).view("datetime64[ns]")
        return pd.DataFrame({"symbol": self.symbols.take(codes), "date": dates})

    def day_codes(self) -> tuple[Any, int]:
        """Per bar, the rank of its calendar day among the days in the panel, and how many days there are.

        Counting-based (no sort): days are numbered from the earliest, marked, and ranked by a
        cumulative count.
        """
        xp = self.xp
        if self.n_rows == 0:
            return xp.zeros(0, dtype=xp.int64), 0
        days = self.dates // NS_PER_DAY
        offset = days - days.min()
        seen = xp.zeros(int(offset.max()) + 1, dtype=xp.int64)
        seen[offset] = 1
        rank = xp.cumsum(seen) - 1
        return rank[offset], int(rank[-1]) + 1

    def lag(self, values: Any, steps: int) -> Any:
        """Long values `steps` bars earlier in the same symbol (later when negative); NaN off its ends."""
        xp = self.xp
        source = self.position - steps
        inside = (source >= 0) & (source < self.lengths[self.codes])
        picked = xp.take(values, xp.clip(xp.arange(self.n_rows) - steps, 0, max(self.n_rows - 1, 0)))
        return xp.where(inside, picked, np.nan)

    def blocks(self) -> Iterator[Block]:
        """Runs of whole symbols covering the panel, each about `engine.block_cells` matrix cells."""
        lengths = self.engine.to_host(self.lengths)
        n_symbols = len(lengths)
        width = int(lengths.max()) if n_symbols else 0
        per_block = n_symbols if self.engine.block_cells is None else self.engine.block_cells // max(width, 1)
        per_block = max(per_block, 1)
        for first in range(0, n_symbols, per_block):
            yield Block(self, first, min(first + per_block, n_symbols))


class Block:
    """A run of whole symbols as a symbol × row matrix, with the windows that run along its rows."""

    def __init__(self, layout: Layout, first: int, stop: int) -> None:
        """Symbols `first` .. `stop`-1 of `layout`, i.e. one contiguous slice of its long rows."""
        xp = layout.xp
        self.layout = layout
        self.xp = xp
        self.engine = layout.engine
        begin, end = (int(v) for v in self.engine.to_host(layout.starts[[first, stop]]))
        self.rows = slice(begin, end)
        lengths = layout.lengths[first:stop]
        self.shape = (stop - first, int(lengths.max()))
        self._cell = (layout.codes[self.rows] - first) * self.shape[1] + layout.position[self.rows]
        self._holds_bar = xp.arange(self.shape[1])[None, :] < lengths[:, None]

    def wide(self, values: Any) -> Any:
        """This block's long values (in row order) as its symbol × row matrix, NaN-padded."""
        matrix = self.xp.full(self.shape[0] * self.shape[1], np.nan)
        matrix[self._cell] = values
        return matrix.reshape(self.shape)

    def long(self, matrix: Any) -> Any:
        """A symbol × row matrix back as long values for this block's rows."""
        return self.xp.take(matrix.reshape(-1), self._cell)

    def matrix(self, name: str) -> Any:
        """An input column of the layout as this block's matrix."""
        return self.wide(self.layout.column(name)[self.rows])

    def lag(self, matrix: Any, steps: int) -> Any:
        """The value `steps` (>= 0) rows earlier in the same symbol; NaN for its first `steps` rows."""
        out = self.xp.full_like(matrix, np.nan)
        width = matrix.shape[1]
        if steps < width:
            out[:, steps:] = matrix[:, : width - steps]
        return out

    def rolling_sum(self, matrix: Any, window: int) -> Any:
        """Sum of the last `window` rows; NaN until the window is full or while it holds a NaN/inf.

        The padding after a symbol's last bar is ignored: trailing windows never reach it.
        """
        xp = self.xp
        bad = ~xp.isfinite(matrix) & self._holds_bar
        if not bool(bad.any()):
            return self._trailing_total(matrix, window)
        total = self._trailing_total(xp.where(bad, 0.0, matrix), window)
        total[self._trailing_total(bad.astype(xp.float64), window) > 0] = np.nan
        return total

    def rolling_mean(self, matrix: Any, window: int) -> Any:
        """Mean of the last `window` rows (TA-Lib SMA)."""
        return self.rolling_sum(matrix, window) / window

    def rolling_mean_var(self, matrix: Any, window: int, ddof: int) -> tuple[Any, Any]:
        """Mean and variance (with `ddof`; 0 = population, as TA-Lib BBANDS) of the last `window` rows.

        Values are centred on the symbol's first value before the running sums, which keeps the
        sum-of-squares cancellation small for high-priced symbols.
        """
        xp = self.xp
        first = matrix[:, :1]
        shift = xp.where(xp.isfinite(first), first, 0.0)
        centred = matrix - shift
        s1 = self.rolling_sum(centred, window)
        s2 = self.rolling_sum(centred * centred, window)
        return s1 / window + shift, (s2 - s1 * s1 / window) / (window - ddof)

    def rolling_std(self, matrix: Any, window: int, ddof: int) -> Any:
        """Standard deviation of the last `window` rows with `ddof`."""
        variance = self.rolling_mean_var(matrix, window, ddof)[1]
        return self.xp.sqrt(self.xp.maximum(variance, 0.0))

    def rolling_max(self, matrix: Any, window: int) -> Any:
        """Largest of the last `window` rows; NaN until full or while the window holds a NaN."""
        return self._rolling_extreme(matrix, window, self.xp.maximum)

    def rolling_min(self, matrix: Any, window: int) -> Any:
        """Smallest of the last `window` rows; NaN until full or while the window holds a NaN."""
        return self._rolling_extreme(matrix, window, self.xp.minimum)

    def smooth(self, matrix: Any, alpha: float, period: int, first: int) -> Any:
        """TA-Lib's seeded exponential smoother along each row, as one IIR filter over the matrix.

        Output is NaN before column `first`; at `first` it is the mean of the `period` values ending
        there (TA-Lib's SMA seed, summed in TA-Lib's order), then y[t] = alpha * x[t] +
        (1 - alpha) * y[t-1]. EMA uses alpha = 2 / (period + 1), Wilder's smoothing (RSI, ATR)
        alpha = 1 / period. The recursion is `lfilter([1], [1, alpha - 1])` on a drive signal
        whose first element is the seed, so every symbol starts from its own seed, no filter state
        passes between rows, and no initial-state argument (whose layout differs between SciPy and
        CuPy) is needed.
        """
        xp = self.xp
        out = xp.full_like(matrix, np.nan)
        if matrix.shape[1] <= first:
            return out
        seed = xp.cumsum(matrix[:, first - period + 1 : first + 1], axis=1)[:, -1] / period
        drive = alpha * matrix[:, first:]
        drive[:, 0] = seed
        out[:, first:] = self.engine.lfilter(xp.asarray([1.0]), xp.asarray([1.0, alpha - 1.0]), drive, axis=1)
        return out

    def _trailing_total(self, matrix: Any, window: int) -> Any:
        """Sum of the last `window` rows from a per-row running sum; NaN before the window is full."""
        xp = self.xp
        if matrix.shape[1] < window:
            return xp.full(matrix.shape, np.nan)
        out = xp.cumsum(matrix, axis=1)
        out[:, window:] -= out[:, :-window].copy()
        out[:, : window - 1] = np.nan
        return out

    def _rolling_extreme(self, matrix: Any, window: int, pick: Callable[[Any, Any], Any]) -> Any:
        """Trailing-window max/min by doubling: spans 1, 2, 4, ... then two overlapping spans cover it."""
        span, best = 1, matrix
        while span * 2 <= window:
            best = pick(best, self.lag(best, span))
            span *= 2
        return pick(best, self.lag(best, window - span)) if window > span else best


def _is_sorted(codes: Any, dates: Any) -> bool:
    """True when rows are already strictly ordered by (symbol code, date)."""
    if codes.shape[0] < 2:
        return True
    step_code, step_date = codes[1:] - codes[:-1], dates[1:] - dates[:-1]
    return bool(((step_code > 0) | ((step_code == 0) & (step_date > 0))).all())


class Sheet:
    """Feature columns gathered on the host into preallocated NaN blocks (one per dtype), then framed."""

    def __init__(self, layout: Layout, blocks: Iterable[tuple[Sequence[str], type]]) -> None:
        """One NaN-filled block per (column names, dtype), in output column order."""
        self._engine = layout.engine
        self._blocks = [
            (list(names), np.full((len(names), layout.n_rows), np.nan, dtype=dtype)) for names, dtype in blocks
        ]
        self._where = {name: (block, i) for names, block in self._blocks for i, name in enumerate(names)}

    def put(self, name: str, values: Any, rows: slice = slice(None)) -> None:
        """Store backend values of one declared column for the long `rows` (default: all).

        A ratio over a zero denominator (a flat Bollinger band, a zero-range bar) is undefined, not
        infinite: non-finite values are stored as missing so no model ever sees an infinity.
        """
        block, index = self._where[name]
        host = np.asarray(self._engine.to_host(values), dtype=block.dtype)
        block[index, rows] = np.where(np.isfinite(host), host, np.nan)

    def frame(self, keys: pd.DataFrame) -> pd.DataFrame:
        """The layout's `keys`, then every declared column: one row per bar in (symbol, date) order."""
        parts = [keys] + [pd.DataFrame(block.T, columns=names, copy=False) for names, block in self._blocks]
        return pd.concat(parts, axis=1, copy=False)
