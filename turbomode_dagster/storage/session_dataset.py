"""A Parquet dataset keyed by session: one file per calendar month, each row carrying its session.

A night appends (replaces) its own session's rows instead of rewriting the whole history, so what a
night writes is bounded by one month file, and a backfill of any range writes each month once.
`write(frame, sessions)` replaces exactly those sessions' rows: it reads the month file, drops them,
adds the new rows, sorts by session and symbol, and replaces the file whole (`storage.atomic`: a
rename locally, one upload to an object store), so readers take no lock. On a local filesystem all of
it runs under an exclusive lock on the dataset, so two runs writing different sessions of one month
cannot lose each other's rows; an fsspec store (`s3://...`, `memory://...`) offers no such lock, so
there writes to one dataset must not run at once (the shipped run queue runs one run at a time). After its month
files, a write records its sessions in `sessions.json`: what this dataset holds, including sessions
that have no rows (the first sessions of a history have no matured label), so a catch-up can ask the
dataset itself rather than trust a Dagster instance that may have recorded another home's runs. A
dataset written before writes kept this record keeps none (`written_sessions` is None): the catch-up
then trusts the instance, as it did before.
No Dagster imports: the IO manager in `orchestration/io_managers.py` is a thin shell over this.
"""

from __future__ import annotations

import fcntl
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from turbomode_dagster.storage.atomic import replace_file
from turbomode_dagster.storage.locations import location

MONTH_FILE = re.compile(r"^\d{4}-\d{2}\.parquet$")
LOCK_FILE = ".lock"
RECORD_FILE = "sessions.json"


class DatasetError(RuntimeError):
    """A dataset file that cannot be read, or a frame that does not fit the dataset; the message names which."""


class SessionDataset:
    """Rows keyed by the datetime column `key` (a session), stored as `<root>/<YYYY-MM>.parquet`; `root` a
    folder or an fsspec URL."""

    def __init__(self, root: str | Path | UPath, key: str = "date") -> None:
        self.root = location(root)
        self.local = isinstance(self.root, Path)
        self.key = key

    def __repr__(self) -> str:
        return f"SessionDataset({str(self.root)!r}, key={self.key!r})"

    def write(self, frame: pd.DataFrame, sessions: Iterable[str | pd.Timestamp]) -> int:
        """Replace the rows of `sessions` with `frame`'s rows; returns the bytes of the month files written.

        Every row of `frame` must belong to one of `sessions`; a session with no row in `frame` ends
        up with no rows (its old rows are dropped).
        """
        days = pd.DatetimeIndex(sorted({pd.Timestamp(s) for s in sessions}))
        if self.key not in frame.columns or "symbol" not in frame.columns:
            raise DatasetError(f"{self.root}: rows need the columns {self.key!r} and 'symbol'")
        rows = frame.assign(**{self.key: pd.to_datetime(frame[self.key]).astype("datetime64[ns]")})
        stray = rows.loc[~rows[self.key].isin(days), self.key]
        if len(stray):
            raise DatasetError(f"{self.root}: rows dated {stray.iloc[0]:%Y-%m-%d} are outside the sessions written")
        written = 0
        if self.local:
            self.root.mkdir(parents=True, exist_ok=True)
        months = _month_codes(rows[self.key])
        new_by_month = {int(code): part for code, part in rows.groupby(months, sort=True)}
        with self._locked():
            record = self.written_sessions()
            for code, month_days in _by_month(days):
                path = self.root / f"{code // 100:04d}-{code % 100:02d}.parquet"
                new = new_by_month.get(code, rows.iloc[:0])
                if path.exists():
                    kept = self._read_table(path).to_pandas()
                    kept = kept[~kept[self.key].isin(month_days)]
                    new = pd.concat([kept, new], ignore_index=True) if len(kept) else new
                if new.empty:
                    path.unlink(missing_ok=True)
                    continue
                table = pa.Table.from_pandas(
                    new.sort_values([self.key, "symbol"], kind="stable", ignore_index=True), preserve_index=False
                )
                written += replace_file(path, lambda staging, t=table: pq.write_table(t, staging))
            if record is not None:  # a dataset from before the record keeps none rather than a partial one
                self._record(record, days)
        return written

    def written_sessions(self) -> set[str] | None:
        """The sessions (`YYYY-MM-DD`) some write has covered, with or without rows; empty for a new dataset,
        None for one written before writes kept the record (its month files cannot say which sessions
        were written without rows)."""
        record = self.root / RECORD_FILE
        if not record.exists():
            return None if self.root.is_dir() and self.files() else set()
        try:
            return set(json.loads(record.read_text()))
        except (ValueError, OSError) as exc:
            raise DatasetError(
                f"dataset record {record} is unreadable: {exc}; delete it to rebuild the dataset"
            ) from exc

    def _record(self, record: set[str], days: pd.DatetimeIndex) -> None:
        """Add `days` to the `record` of sessions written (under the write's lock, after its month files)."""
        held = sorted(record | {f"{day:%Y-%m-%d}" for day in days})
        replace_file(self.root / RECORD_FILE, lambda staging: staging.write_text(json.dumps(held)))

    def read(
        self,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        columns: Sequence[str] | None = None,
        symbols: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows with start <= session <= end (either open), sorted by session and symbol.

        Raises LookupError when no month file overlaps the window; a window whose files hold no
        matching row gives an empty frame with the dataset's columns.
        """
        lo = None if start is None else pd.Timestamp(start)
        hi = None if end is None else pd.Timestamp(end)
        filters = []
        if lo is not None:
            filters.append((self.key, ">=", lo))
        if hi is not None:
            filters.append((self.key, "<=", hi))
        if symbols is not None:  # typed, so an empty list selects nothing rather than failing on a null array
            filters.append(("symbol", "in", pa.array(list(symbols), pa.string())))
        wanted = None if columns is None else list(dict.fromkeys([self.key, "symbol", *columns]))
        tables = [
            self._read_table(path, wanted, filters or None)
            for path in self.files()
            if (lo is None or path.stem >= f"{lo:%Y-%m}") and (hi is None or path.stem <= f"{hi:%Y-%m}")
        ]
        if not tables:
            raise LookupError(
                f"{self.root} has no file{_window(lo, hi)}: materialise {self.root.name} for those sessions first"
            )
        # One conversion of the concatenated Arrow table (no per-file frames to concat), giving Arrow's buffers
        # back as it goes: a 3,000-symbol training window otherwise held three copies at its peak.
        table = pa.concat_tables(tables, promote_options="default")
        del tables
        if columns is not None:
            table = table.select(list(columns))
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        pa.default_memory_pool().release_unused()
        return frame

    def sessions(self) -> list[pd.Timestamp]:
        """Every session with at least one row, in order."""
        days: set[pd.Timestamp] = set()
        for path in self.files():
            days.update(pd.DatetimeIndex(self._read_table(path, [self.key]).column(self.key).to_pandas().unique()))
        return sorted(days)

    def files(self) -> list[Path | UPath]:
        """The month files, oldest first."""
        if not self.root.is_dir():
            return []
        months = (p for p in self.root.iterdir() if MONTH_FILE.match(p.name) and p.is_file())
        return sorted(months, key=lambda p: p.name)

    def bytes(self) -> int:
        """Size of the month files on disk."""
        return sum(p.stat().st_size for p in self.files())

    def _read_table(
        self, path: Path | UPath, columns: list[str] | None = None, filters: list | None = None
    ) -> pa.Table:
        try:
            if self.local:  # pyarrow reads a local file itself, no Python file object
                return pq.read_table(path, columns=columns, filters=filters)
            return pq.read_table(path.path, columns=columns, filters=filters, filesystem=path.fs)
        except (pa.ArrowException, OSError) as exc:
            raise DatasetError(f"dataset file {path} is unreadable: {exc}") from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive advisory lock on a local dataset for one read-modify-write (none on an fsspec store)."""
        if not self.local:
            yield
            return
        with open(self.root / LOCK_FILE, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _month_codes(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """year * 100 + month per date (vectorised; strftime per row is slow on millions of rows)."""
    index = pd.DatetimeIndex(dates)
    return np.asarray(index.year * 100 + index.month)


def _by_month(days: pd.DatetimeIndex) -> Iterator[tuple[int, pd.DatetimeIndex]]:
    """The sessions of each month, as (year * 100 + month, sessions)."""
    codes = _month_codes(days)
    for code in sorted(set(codes.tolist())):
        yield code, days[codes == code]


def _window(lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> str:
    if lo is None and hi is None:
        return ""
    return f" from {'the start' if lo is None else f'{lo:%Y-%m-%d}'} to {'the end' if hi is None else f'{hi:%Y-%m-%d}'}"
