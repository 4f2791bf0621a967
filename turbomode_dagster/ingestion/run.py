"""One ingestion partition: decide what each symbol lacks, fetch it through the chain, validate, write.

The fetch window for a symbol runs from the session after its last stored bar (or the configured
history start on a first load) to the partition day, so a first materialisation loads the history and
a nightly partition adds its day. Everything lands in one transaction, so a killed process leaves the
database as it was before the run.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import pandas as pd

from turbomode_dagster import calendar
from turbomode_dagster.ingestion.validation import (
    QUARANTINE_COLUMNS,
    reject_all,
    validate_actions,
    validate_bars,
    validate_fundamentals,
)
from turbomode_dagster.sources.chain import ChainResult, SourceChain
from turbomode_dagster.storage.market_db import MarketDBWriter


@dataclass
class IngestionReport:
    """What one partition's ingestion did, for metadata, logs and the CLI summary."""

    partition_date: str
    is_session: bool
    window_start: str | None = None
    rows_written: dict[str, int] = field(default_factory=dict)
    rows_by_source: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    sources_down: dict[str, str] = field(default_factory=dict)
    quarantined: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS))
    bars: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def symbols_with_bar_on_day(self) -> set[str]:
        """Symbols whose accepted bars include the partition day."""
        if self.bars.empty:
            return set()
        return set(self.bars.loc[self.bars["date"] == self.partition_date, "symbol"])


def fetch_windows(
    last_dates: dict[str, str], symbols: list[str], history_start: dt.date, day: str
) -> dict[str, list[str]]:
    """Group symbols by the first session each one lacks (always at least the partition day itself)."""
    windows: dict[str, list[str]] = defaultdict(list)
    first_load = min(calendar.next_session(calendar.previous_session(history_start)), day)
    for symbol in symbols:
        last = last_dates.get(symbol)
        start = calendar.next_session(last) if last else first_load
        windows[min(start, day)].append(symbol)
    return dict(windows)


def ingest_partition(
    writer: MarketDBWriter,
    chain: SourceChain,
    symbols: list[str],
    history_start: dt.date,
    day: str,
    run_id: str | None = None,
) -> IngestionReport:
    """Fetch, validate and store everything the universe lacks up to `day`, in one transaction."""
    started = _now()
    if not calendar.is_session(day):
        return IngestionReport(partition_date=day, is_session=False)
    windows = fetch_windows(writer.last_bar_dates(before=day), symbols, history_start, day)
    chain.begin_run()  # a source found down stays skipped for this run's other windows, not the next run's
    fetched = _fetch_all(chain, windows, day)
    failures = {s: dict(r) for s, r in fetched.failures.items()}
    splits, bad_splits = _validate(
        partial(validate_actions, table="splits", date_column="date", value_column="ratio", partition_day=day),
        fetched.splits,
        "splits",
        "date",
        failures,
    )
    dividends, bad_dividends = _validate(
        partial(validate_actions, table="dividends", date_column="ex_date", value_column="amount", partition_day=day),
        fetched.dividends,
        "dividends",
        "ex_date",
        failures,
    )
    fundamentals, bad_fundamentals = _validate(
        partial(validate_fundamentals, partition_day=day), fetched.fundamentals, "fundamentals", "period_end", failures
    )
    previous, stored_splits = writer.last_closes_before(day), writer.splits()
    known_splits = pd.concat(
        [f for f in (stored_splits, splits[["symbol", "date", "ratio"]]) if not f.empty] or [stored_splits],
        ignore_index=True,
    ).drop_duplicates(["symbol", "date"], keep="last")
    bars, bad_bars = _validate(
        partial(validate_bars, partition_day=day, previous=previous, splits=known_splits),
        fetched.bars,
        "daily_bars",
        "date",
        failures,
    )
    rejected = pd.concat(
        [f for f in (bad_bars, bad_splits, bad_dividends, bad_fundamentals) if not f.empty]
        or [pd.DataFrame(columns=QUARANTINE_COLUMNS)],
        ignore_index=True,
    )
    report = IngestionReport(
        partition_date=day,
        is_session=True,
        window_start=min(windows),
        rows_by_source={k: int(v) for k, v in bars["source"].value_counts().sort_index().items()},
        failures=failures,
        sources_down=fetched.unavailable,
        quarantined=rejected,
        bars=bars,
    )
    with writer.transaction():
        report.rows_written = {
            "daily_bars": writer.upsert("daily_bars", bars, "source", started),
            "splits": writer.upsert("splits", splits, "source", started),
            "dividends": writer.upsert("dividends", dividends, "source", started),
            "fundamentals": writer.upsert("fundamentals", fundamentals, "source", started),
            "symbol_metadata": writer.upsert(
                "symbol_metadata", fetched.metadata.drop_duplicates("symbol"), "source", started
            ),
        }
        writer.quarantine(rejected, day, started)
        writer.log_ingestion(
            {
                "partition_date": day,
                "run_id": run_id,
                "started_at": started,
                "finished_at": _now(),
                "status": "partial" if failures else "success",
                "rows_by_source": report.rows_by_source,
                "failures": failures,
                "quarantined": len(rejected),
            }
        )
    return report


def _validate(
    validate: Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]],
    frame: pd.DataFrame,
    table: str,
    date_column: str,
    failures: dict[str, dict[str, str]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`validate(frame)`; should it raise, validate each (symbol, source) alone.

    A group that still raises is quarantined whole with the error, and recorded as that symbol's
    failure naming the source, so one unforeseen value costs its own rows, never the run.
    """
    try:
        return validate(frame)
    except Exception:  # narrowed down below, where the error can name its symbol and source
        pass
    accepted, rejected = [], []
    frame = frame.reset_index(drop=True)
    sources = frame["source"].astype(str) if "source" in frame else pd.Series("unknown", index=frame.index)
    for (symbol, source), group in frame.groupby([frame["symbol"].astype(str), sources], sort=True):
        try:
            good, bad = validate(group)
        except Exception as exc:
            reason = f"validating {table} of {symbol} from {source} failed: {type(exc).__name__}: {exc}"
            failures.setdefault(symbol, {})[source] = reason
            rejected.append(reject_all(group, reason, table, date_column))
            continue
        accepted.append(good)
        rejected.append(bad)
    return (
        pd.concat([f for f in accepted if not f.empty] or [frame.iloc[:0]], ignore_index=True),
        pd.concat(
            [f for f in rejected if not f.empty] or [pd.DataFrame(columns=QUARANTINE_COLUMNS)], ignore_index=True
        ),
    )


def _fetch_all(chain: SourceChain, windows: dict[str, list[str]], day: str) -> ChainResult:
    """One chain fetch per distinct window start, merged."""
    results = [
        chain.fetch(group, calendar.as_date(start), calendar.as_date(day)) for start, group in sorted(windows.items())
    ]
    merged = {
        name: pd.concat([getattr(r, name) for r in results], ignore_index=True)
        for name in ("bars", "splits", "dividends", "fundamentals", "metadata")
    }
    merged["splits"] = merged["splits"].drop_duplicates(["symbol", "date", "ratio"])
    merged["dividends"] = merged["dividends"].drop_duplicates(["symbol", "ex_date", "amount"])
    merged["fundamentals"] = merged["fundamentals"].drop_duplicates()
    failures = {s: reasons for r in results for s, reasons in r.failures.items()}
    unavailable = {name: reason for r in results for name, reason in r.unavailable.items()}
    return ChainResult(**merged, failures=failures, unavailable=unavailable)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
