"""Task 1 over a range of sessions: plan what to fetch, fetch in chunks, validate, write in one transaction.

A run over sessions [first, last] fetches those sessions for the universe; a symbol with no bar at all
before `first` while others have some (newly added to the universe, or one that never loaded) is
fetched from the history start instead, so its history is complete. A night is the range [D, D]; a
backfill or a catch-up is one longer range in one run. Everything lands in one transaction, so a killed
process leaves the database as it was before the run.
"""

from __future__ import annotations

import datetime as dt
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

# Bars per source fetch: a night's universe is one fetch; ten years go in chunks of about 20 symbols, so a
# long run reports progress as it goes and holds one chunk's raw frames at a time in the sources.
ROWS_PER_FETCH = 50_000
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
    bars: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def label(self) -> str:
        """The sessions as Dagster writes a partition range (`A...B`), or the one session."""
        return self.first if self.first == self.last else f"{self.first}...{self.last}"

    @property
    def symbols_with_bar_on_last(self) -> set[str]:
        """Symbols whose accepted bars include the range's last session."""
        if self.bars.empty:
            return set()
        return set(self.bars.loc[self.bars["date"] == self.last, "symbol"])


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
    transaction; new symbols get their history from `history_start` (see `plan_fetch`)."""
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
    fetched = _fetch_all(chain, plan.windows, last, say)
    failures = {s: dict(r) for s, r in fetched.failures.items()}
    splits, bad_splits = _validate(
        partial(validate_actions, table="splits", date_column="date", value_column="ratio", partition_day=last),
        fetched.splits,
        "splits",
        "date",
        failures,
    )
    dividends, bad_dividends = _validate(
        partial(validate_actions, table="dividends", date_column="ex_date", value_column="amount", partition_day=last),
        fetched.dividends,
        "dividends",
        "ex_date",
        failures,
    )
    fundamentals, bad_fundamentals = _validate(
        partial(validate_fundamentals, partition_day=last), fetched.fundamentals, "fundamentals", "period_end", failures
    )
    previous, stored_splits = writer.last_closes_before(first), writer.splits()
    known_splits = pd.concat(
        [f for f in (stored_splits, splits[["symbol", "date", "ratio"]]) if not f.empty] or [stored_splits],
        ignore_index=True,
    ).drop_duplicates(["symbol", "date"], keep="last")
    bars, bad_bars = _validate(
        partial(validate_bars, partition_day=last, previous=previous, splits=known_splits),
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
        first=first,
        last=last,
        is_session=True,
        sessions=calendar.sessions(first, last),
        new_symbols=plan.new_symbols,
        fetched_from=min(plan.windows),
        rows_by_source={k: int(v) for k, v in bars["source"].value_counts().sort_index().items()},
        failures=failures,
        sources_down=fetched.unavailable,
        quarantined=rejected,
        bars=bars,
    )
    say(f"validated {len(bars)} bars ({len(rejected)} rows quarantined); writing them in one transaction")
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
        writer.quarantine(rejected, last, started)
        writer.log_ingestion(
            {
                "partition_date": report.label,
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


def _fetch_all(chain: SourceChain, windows: dict[str, list[str]], last: str, say: Progress) -> ChainResult:
    """The chain's fetches, window by window in chunks of symbols of about ROWS_PER_FETCH bars, merged."""
    chunks = [
        (start, group[i : i + size])
        for start, group in sorted(windows.items())
        for size in [max(1, ROWS_PER_FETCH // len(calendar.sessions(start, last)))]
        for i in range(0, len(group), size)
    ]
    total, done, results = sum(len(g) for g in windows.values()), 0, []
    for start, group in chunks:
        results.append(chain.fetch(group, calendar.as_date(start), calendar.as_date(last)))
        done += len(group)
        if len(chunks) > 1:
            say(f"fetched {done} of {total} symbols ({start}..{last}, {len(results[-1].bars)} bars in this chunk)")
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
