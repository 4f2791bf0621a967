"""Task 1 over a range of sessions: plan what to fetch, fetch in chunks, validate, write in one transaction.

A run over sessions [first, last] fetches those sessions for the universe; a symbol with no bar at all
before `first` while others have some (newly added to the universe, or one that never loaded) is
fetched from the history start instead, so its history is complete. A night is the range [D, D]; a
backfill or a catch-up is one longer range in one run. Everything lands in one transaction (chunks are
validated and written one after another inside it), so a killed process leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
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

# Bars per source fetch: a night's universe is one fetch; ten years go in chunks of about 20 symbols, so a
# long run reports progress as it goes and holds one chunk's rows at a time: each chunk is validated and
# written before the next is fetched.
ROWS_PER_FETCH = 50_000
PREVIEW_ROWS = 10
Progress = Callable[[str], None]


@dataclass
class IngestionReport:
    """What one run's ingestion did, for metadata, logs and the CLI summary."""

    first: str
    last: str
    is_session: bool
    sessions: list[str] = field(default_factory=list)
    new_symbols: list[str] = field(default_factory=list)
    fetched_from: str | None = None  # the earliest session fetched: `first`, or the history start for new symbols
    rows_written: dict[str, int] = field(default_factory=dict)
    rows_by_source: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    sources_down: dict[str, str] = field(default_factory=dict)
    quarantined: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=QUARANTINE_COLUMNS))
    bars_per_session: dict[str, int] = field(default_factory=dict)  # distinct symbols with an accepted bar
    symbols_ingested: set[str] = field(default_factory=set)
    symbols_with_bar_on_last: set[str] = field(default_factory=set)
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)  # the latest accepted bars, for the UI

    @property
    def label(self) -> str:
        """The sessions as Dagster writes a partition range (`A...B`), or the one session."""
        return self.first if self.first == self.last else f"{self.first}...{self.last}"


@dataclass(frozen=True)
class FetchPlan:
    """Which symbols are fetched from where: the range for most, the history start for new ones."""

    windows: dict[str, list[str]]  # first session fetched -> symbols, all fetched up to the range's last
    new_symbols: list[str]


def plan_fetch(last_dates: dict[str, str], symbols: list[str], history_start: dt.date, first: str) -> FetchPlan:
    """Symbols with a bar before `first` (or all, when none has one) fetch from `first`; the rest from history."""
    history_first = calendar.next_session(calendar.previous_session(history_start))  # first session on or after
    new = [s for s in symbols if s not in last_dates] if last_dates and history_first < first else []
    known = [s for s in symbols if s not in new]
    return FetchPlan({start: group for start, group in ((first, known), (history_first, new)) if group}, new)


def ingest_sessions(
    writer: MarketDBWriter,
    chain: SourceChain,
    symbols: list[str],
    history_start: dt.date,
    first: str,
    last: str | None = None,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> IngestionReport:
    """Fetch, validate and store sessions `first`..`last` (default: `first` alone) for the universe, in one
    transaction; new symbols get their history from `history_start` (see `plan_fetch`).

    Each fetch chunk is validated and written before the next is fetched, so a ten-year catch-up holds one
    chunk's rows, not the whole history; the transaction spans every chunk, so a failure still keeps nothing.
    """
    started = _now()
    last = last or first
    say = progress or (lambda message: None)
    if not (calendar.is_session(first) and calendar.is_session(last)):
        return IngestionReport(first=first, last=last, is_session=False)
    plan = plan_fetch(writer.last_bar_dates(before=first), symbols, history_start, first)
    if plan.new_symbols:
        say(
            f"{len(plan.new_symbols)} symbol(s) without any bar before {first}, fetched from "
            f"{min(plan.windows)}: {', '.join(plan.new_symbols)}"
        )
    chain.begin_run()  # a source found down stays skipped for this run's other fetches, not the next run's
    context = _Context(last, writer.last_closes_before(first), writer.splits())
    report = IngestionReport(
        first=first,
        last=last,
        is_session=True,
        sessions=calendar.sessions(first, last),
        new_symbols=plan.new_symbols,
        fetched_from=min(plan.windows),
    )
    tally, rejected = _Tally(last), []
    with writer.transaction():
        for fetched in _fetches(chain, plan.windows, last, say):
            _record_chunk_failures(report, fetched)
            bars, chunk_rejected, chunk_rows = _store_chunk(writer, fetched, context, report.failures, started)
            tally.add(bars, chunk_rows)
            rejected.extend(f for f in chunk_rejected if not f.empty)
            del bars, fetched
        report.quarantined = pd.concat(rejected or [pd.DataFrame(columns=QUARANTINE_COLUMNS)], ignore_index=True)
        tally.fill(report)
        say(f"validated {tally.rows} bars ({len(report.quarantined)} rows quarantined); committing the transaction")
        writer.quarantine(report.quarantined, last, started)
        writer.log_ingestion(
            {
                "partition_date": report.label,
                "run_id": run_id,
                "started_at": started,
                "finished_at": _now(),
                "status": "partial" if report.failures else "success",
                "rows_by_source": report.rows_by_source,
                "failures": report.failures,
                "quarantined": len(report.quarantined),
            }
        )
    return report


@dataclass(frozen=True)
class _Context:
    """What every chunk is validated against: the range's last session, the stored closes and splits before it."""

    last: str
    previous: pd.DataFrame
    stored_splits: pd.DataFrame


@dataclass
class _Tally:
    """The run's accepted bars summed chunk by chunk, so the report needs no copy of them."""

    last: str
    rows: int = 0
    per_session: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    symbols: set[str] = field(default_factory=set)
    on_last: set[str] = field(default_factory=set)
    tail: pd.DataFrame | None = None
    written: dict[str, int] = field(default_factory=dict)

    def add(self, bars: pd.DataFrame, written: dict[str, int]) -> None:
        for table, count in written.items():
            self.written[table] = self.written.get(table, 0) + count
        if bars.empty:
            return
        self.rows += len(bars)
        # Chunks hold disjoint symbols, so per-chunk distinct counts add up to the run's.
        for day, count in bars.groupby("date")["symbol"].nunique().items():
            self.per_session[day] = self.per_session.get(day, 0) + int(count)
        for name, count in bars["source"].value_counts().items():
            self.by_source[str(name)] = self.by_source.get(str(name), 0) + int(count)
        self.symbols.update(bars["symbol"].unique())
        self.on_last.update(bars.loc[bars["date"] == self.last, "symbol"])
        latest = _last_rows(bars)
        self.tail = latest if self.tail is None else _last_rows(pd.concat([self.tail, latest], ignore_index=True))

    def fill(self, report: IngestionReport) -> None:
        report.rows_written = self.written
        report.rows_by_source = dict(sorted(self.by_source.items()))
        report.bars_per_session = dict(sorted(self.per_session.items()))
        report.symbols_ingested = self.symbols
        report.symbols_with_bar_on_last = self.on_last
        if self.tail is not None:
            report.preview = self.tail


def _last_rows(bars: pd.DataFrame) -> pd.DataFrame:
    """The PREVIEW_ROWS latest bars by (date, symbol): what the UI previews of a run."""
    return bars.sort_values(["date", "symbol"]).tail(PREVIEW_ROWS)


def _record_chunk_failures(report: IngestionReport, fetched: ChainResult) -> None:
    report.failures.update({s: dict(r) for s, r in fetched.failures.items()})
    report.sources_down.update(fetched.unavailable)


def _store_chunk(
    writer: MarketDBWriter,
    fetched: ChainResult,
    context: _Context,
    failures: dict[str, dict[str, str]],
    started: str,
) -> tuple[pd.DataFrame, list[pd.DataFrame], dict[str, int]]:
    """Validate one fetch chunk and upsert what passes: (accepted bars, rejections, rows offered per table)."""
    last = context.last
    splits, bad_splits = _validate(
        partial(validate_actions, table="splits", date_column="date", value_column="ratio", partition_day=last),
        fetched.splits.drop_duplicates(["symbol", "date", "ratio"]),
        "splits",
        "date",
        failures,
    )
    dividends, bad_dividends = _validate(
        partial(validate_actions, table="dividends", date_column="ex_date", value_column="amount", partition_day=last),
        fetched.dividends.drop_duplicates(["symbol", "ex_date", "amount"]),
        "dividends",
        "ex_date",
        failures,
    )
    fundamentals, bad_fundamentals = _validate(
        partial(validate_fundamentals, partition_day=last),
        fetched.fundamentals.drop_duplicates(),
        "fundamentals",
        "period_end",
        failures,
    )
    stored = context.stored_splits
    known_splits = pd.concat(
        [f for f in (stored, splits[["symbol", "date", "ratio"]]) if not f.empty] or [stored], ignore_index=True
    ).drop_duplicates(["symbol", "date"], keep="last")
    bars, bad_bars = _validate(
        partial(validate_bars, partition_day=last, previous=context.previous, splits=known_splits),
        fetched.bars,
        "daily_bars",
        "date",
        failures,
    )
    written = {
        "daily_bars": writer.upsert("daily_bars", bars, "source", started),
        "splits": writer.upsert("splits", splits, "source", started),
        "dividends": writer.upsert("dividends", dividends, "source", started),
        "fundamentals": writer.upsert("fundamentals", fundamentals, "source", started),
        "symbol_metadata": writer.upsert(
            "symbol_metadata", fetched.metadata.drop_duplicates("symbol"), "source", started
        ),
    }
    return bars, [bad_bars, bad_splits, bad_dividends, bad_fundamentals], written


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


def _fetches(chain: SourceChain, windows: dict[str, list[str]], last: str, say: Progress) -> Iterator[ChainResult]:
    """The chain's fetches, window by window in chunks of symbols of about ROWS_PER_FETCH bars, one at a time."""
    chunks = [
        (start, group[i : i + size])
        for start, group in sorted(windows.items())
        for size in [max(1, ROWS_PER_FETCH // len(calendar.sessions(start, last)))]
        for i in range(0, len(group), size)
    ]
    total, done = sum(len(g) for g in windows.values()), 0
    for start, group in chunks:
        fetched = chain.fetch(group, calendar.as_date(start), calendar.as_date(last))
        done += len(group)
        if len(chunks) > 1:
            say(f"fetched {done} of {total} symbols ({start}..{last}, {len(fetched.bars)} bars in this chunk)")
        yield fetched


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
