"""A range of sessions written to a `SessionDataset` block by block, with the figures the run reports.

A ten-year backfill of features or samples is computed a calendar year at a time; writing each block as
it comes (instead of returning one frame of the decade) bounds memory by one block. `WrittenRange`
keeps what the asset's metadata needs: counts, the date span, the last block's rows and a few columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from turbomode_dagster.storage.session_dataset import SessionDataset


@dataclass(frozen=True)
class SessionRows:
    """Rows computed for `sessions` (a block of a range): what one dataset write replaces."""

    rows: pd.DataFrame
    sessions: list[str]


@dataclass
class WrittenRange:
    """What a block-by-block write stored: its sessions, bytes, rows, symbols and date span (of `date`)."""

    sessions: list[str] = field(default_factory=list)
    bytes_written: int = 0
    rows: int = 0
    symbols: set[str] = field(default_factory=set)
    first_date: pd.Timestamp | None = None
    last_date: pd.Timestamp | None = None
    last_rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # the last block's rows
    kept: pd.DataFrame = field(default_factory=pd.DataFrame)  # `keep_columns` of every row
    attrs: dict = field(default_factory=dict)  # the last block's frame attrs (e.g. the feature backend)


def write_blocks(
    dataset: SessionDataset, blocks: Iterable[SessionRows], keep_columns: Sequence[str] = ()
) -> WrittenRange:
    """Write each block's sessions to `dataset` as it comes; the run's figures, holding one block at a time."""
    out, kept = WrittenRange(), []
    for block in blocks:
        rows = block.rows
        out.bytes_written += dataset.write(rows, block.sessions)
        out.sessions.extend(block.sessions)
        out.attrs = dict(rows.attrs)
        out.last_rows = rows
        if rows.empty:
            continue
        out.rows += len(rows)
        out.symbols.update(rows["symbol"].unique())
        first, last = rows["date"].min(), rows["date"].max()
        out.first_date = first if out.first_date is None else min(out.first_date, first)
        out.last_date = last if out.last_date is None else max(out.last_date, last)
        if keep_columns:
            kept.append(rows[list(keep_columns)])
    out.kept = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=list(keep_columns))
    return out
