"""Ingestion of a range of sessions without Dagster: fetch plan, new symbols, quarantine, holidays, idempotency,
range equals night by night, progress, a killed writer."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.ingestion import run
from turbomode_dagster.ingestion.checks import unexplained_jumps
from turbomode_dagster.ingestion.run import IngestionReport, ingest_sessions, plan_fetch
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.sources.csv import CsvSource
from turbomode_dagster.storage.market_db import MarketDBWriter
from turbomode_dagster_tests.conftest import DAY, HISTORY_START, UNIVERSE, FakeSource, dump_tables, read_table

REPO = Path(__file__).resolve().parents[2]
START = dt.date.fromisoformat(HISTORY_START)


def ingest(
    db: Path, source: FakeSource | list[FakeSource], day: str, symbols=UNIVERSE, first: str = HISTORY_START, **kwargs
) -> IngestionReport:
    """Ingest sessions `first`..`day` (by default the whole small history) in one run."""
    writer = MarketDBWriter(db)
    try:
        chain = SourceChain(source if isinstance(source, list) else [source])
        return ingest_sessions(writer, chain, list(symbols), START, first, day, run_id=f"run-{day}", **kwargs)
    finally:
        writer.close()


def test_the_plan_fetches_the_range_and_new_symbols_from_the_history_start() -> None:
    # AAPL and MSFT have bars before the range; NVDA has none, so it is new and gets its history.
    plan = plan_fetch({"AAPL": "2026-11-20", "MSFT": "2026-11-24"}, UNIVERSE, START, DAY)
    assert plan.windows == {DAY: ["AAPL", "MSFT"], HISTORY_START: ["NVDA"]} and plan.new_symbols == ["NVDA"]
    # An empty database: the range is all there is, nobody is new (a single partition stores just its session).
    assert plan_fetch({}, UNIVERSE, START, DAY).windows == {DAY: UNIVERSE}
    # A range that starts at the history start has nothing earlier to fetch; a weekend start means the Monday.
    assert plan_fetch({"AAPL": "2026-10-30"}, UNIVERSE, START, HISTORY_START).new_symbols == []
    weekend = plan_fetch({"AAPL": "2026-11-24"}, ["AAPL", "MSFT"], dt.date(2026, 11, 1), DAY)
    assert weekend.windows == {DAY: ["AAPL"], "2026-11-02": ["MSFT"]}


def test_a_range_fetches_its_sessions_in_one_fetch_and_one_transaction(db_path: Path) -> None:
    source = FakeSource()
    report = ingest(db_path, source, DAY)
    assert [(c[1], c[2]) for c in source.calls] == [(START, dt.date(2026, 11, 25))]
    bars = read_table(db_path, "daily_bars")
    sessions = calendar.sessions(HISTORY_START, DAY)
    assert len(bars) == len(UNIVERSE) * len(sessions)
    assert sorted(bars["date"].unique()) == sessions == report.sessions
    assert set(bars["source"]) == {"fake"}
    assert (report.fetched_from, report.label, report.new_symbols) == (HISTORY_START, f"{HISTORY_START}...{DAY}", [])
    assert report.rows_by_source == {"fake": len(bars)}
    assert report.symbols_with_bar_on_last == set(UNIVERSE)
    assert report.rows_written["daily_bars"] == len(bars)
    assert len(read_table(db_path, "fundamentals")) == len(read_table(db_path, "symbol_metadata")) == 3
    log = read_table(db_path, "ingestion_log")
    assert log[["partition_date", "run_id", "status", "quarantined"]].values.tolist() == [
        [f"{HISTORY_START}...{DAY}", f"run-{DAY}", "success", 0]
    ]
    assert json.loads(log.loc[0, "rows_by_source"]) == {"fake": len(bars)}


def test_one_session_on_an_empty_database_stores_just_that_session(db_path: Path) -> None:
    report = ingest(db_path, FakeSource(), DAY, first=DAY)
    bars = read_table(db_path, "daily_bars")
    assert bars["date"].unique().tolist() == [DAY] and sorted(bars["symbol"]) == UNIVERSE
    assert (report.label, report.sessions, report.new_symbols) == (DAY, [DAY], [])


def test_a_nightly_partition_fetches_only_its_day(db_path: Path) -> None:
    ingest(db_path, FakeSource(), "2026-11-24")
    source = FakeSource()
    report = ingest(db_path, source, DAY, first=DAY)
    assert [(c[0], c[1], c[2]) for c in source.calls] == [(UNIVERSE, dt.date(2026, 11, 25), dt.date(2026, 11, 25))]
    assert report.rows_by_source == {"fake": 3}
    assert read_table(db_path, "daily_bars")["date"].max() == DAY


def test_a_symbol_that_never_loaded_catches_up_from_the_history_start(db_path: Path) -> None:
    first = ingest(db_path, FakeSource(serves=["AAPL", "NVDA"]), "2026-11-24")
    assert first.failures == {"MSFT": {"fake": "fake does not know MSFT"}}
    assert read_table(db_path, "ingestion_log")["status"].tolist() == ["partial"]
    source = FakeSource()
    ingest(db_path, source, DAY, first=DAY)
    assert sorted((tuple(c[0]), c[1]) for c in source.calls) == [
        (("AAPL", "NVDA"), dt.date(2026, 11, 25)),
        (("MSFT",), START),
    ]
    bars = read_table(db_path, "daily_bars")
    assert bars.groupby("symbol").size().to_dict() == {s: len(calendar.sessions(HISTORY_START, DAY)) for s in UNIVERSE}


def test_a_symbol_added_to_the_universe_gets_its_history_and_says_so(db_path: Path) -> None:
    ingest(db_path, FakeSource(), "2026-11-24", symbols=["AAPL", "MSFT"])
    said: list[str] = []
    report = ingest(db_path, FakeSource(), DAY, first=DAY, progress=said.append)
    assert report.new_symbols == ["NVDA"] and report.fetched_from == HISTORY_START
    assert f"1 symbol(s) without any bar before {DAY}, fetched from {HISTORY_START}: NVDA" in said
    nvda = read_table(db_path, "daily_bars").query("symbol == 'NVDA'")["date"]
    assert nvda.tolist() == calendar.sessions(HISTORY_START, DAY)


def without_stamps(db: Path) -> dict[str, list[tuple]]:
    """The data tables' rows without write times; quarantine also without the run's partition date."""
    tables = dump_tables(db)
    data = {t: sorted(r[:-1] for r in rows) for t, rows in tables.items() if t not in ("ingestion_log", "quarantine")}
    return {**data, "quarantine": sorted(r[:6] for r in tables["quarantine"])}


def test_a_range_run_stores_what_night_by_night_runs_store(tmp_path: Path) -> None:
    def source() -> FakeSource:
        return FakeSource(
            splits={("NVDA", "2026-11-16"): 2.0},
            dividends={("AAPL", "2026-11-10"): 0.26},
            overrides={("MSFT", "2026-11-18"): {"low": 10_000.0}},
        )

    ingest(tmp_path / "range.db", source(), DAY)
    for session in calendar.sessions(HISTORY_START, DAY):
        ingest(tmp_path / "nightly.db", source(), session, first=session)
    ranged, nightly = without_stamps(tmp_path / "range.db"), without_stamps(tmp_path / "nightly.db")
    assert ranged == nightly
    assert len(ranged["daily_bars"]) == len(UNIVERSE) * len(calendar.sessions(HISTORY_START, DAY)) - 1
    assert len(ranged["splits"]) == len(ranged["dividends"]) == len(ranged["quarantine"]) == 1


def test_a_long_range_fetches_in_chunks_and_reports_progress(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "ROWS_PER_FETCH", 40)  # 18 sessions: two symbols a fetch
    source, said = FakeSource(), []
    ingest(db_path, source, DAY, progress=said.append)
    assert [c[0] for c in source.calls] == [["AAPL", "MSFT"], ["NVDA"]]
    assert [m.split(" (")[0] for m in said if m.startswith("fetched")] == [
        "fetched 2 of 3 symbols",
        "fetched 3 of 3 symbols",
    ]
    assert said[-1].startswith(f"validated {3 * 18} bars")
    assert len(read_table(db_path, "daily_bars")) == 3 * 18


class WatchedSource(FakeSource):
    """A FakeSource that counts, at each fetch, the bars the run's own connection already holds, and can fail."""

    def __init__(self, writer: MarketDBWriter, fail_on_call: int | None = None) -> None:
        super().__init__()
        self.writer, self.fail_on_call, self.rows_at_fetch = writer, fail_on_call, []

    def fetch(self, symbols, start, end):
        self.rows_at_fetch.append(self.writer.con.execute("SELECT COUNT(*) FROM daily_bars").fetchone()[0])
        if len(self.rows_at_fetch) == self.fail_on_call:
            raise RuntimeError("the process dies in the middle of the catch-up")
        return super().fetch(symbols, start, end)


def test_each_chunk_is_written_before_the_next_fetch_and_a_late_failure_keeps_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up holds one chunk's rows at a time (written inside the run's one transaction), yet stays atomic."""
    monkeypatch.setattr(run, "ROWS_PER_FETCH", 40)  # 18 sessions: two symbols a fetch
    writer = MarketDBWriter(db_path)
    try:
        source = WatchedSource(writer)
        report = ingest_sessions(writer, SourceChain([source]), UNIVERSE, START, HISTORY_START, DAY)
        assert source.rows_at_fetch == [0, 2 * 18]
        assert report.rows_written["daily_bars"] == 3 * 18 and report.bars_per_session == dict.fromkeys(
            calendar.sessions(HISTORY_START, DAY), 3
        )
        assert report.symbols_ingested == set(UNIVERSE) and len(report.preview) == run.PREVIEW_ROWS
        assert report.preview[["date", "symbol"]].values.tolist()[-3:] == [[DAY, s] for s in sorted(UNIVERSE)]
    finally:
        writer.close()
    failing_db = db_path.with_name("failing.db")
    writer = MarketDBWriter(failing_db)
    try:
        with pytest.raises(RuntimeError, match="dies in the middle"):
            ingest_sessions(
                writer, SourceChain([WatchedSource(writer, fail_on_call=2)]), UNIVERSE, START, HISTORY_START, DAY
            )
    finally:
        writer.close()
    assert read_table(failing_db, "daily_bars").empty and read_table(failing_db, "ingestion_log").empty


def test_bad_rows_go_to_quarantine_and_never_to_daily_bars(db_path: Path) -> None:
    source = FakeSource(
        overrides={("MSFT", DAY): {"low": 10_000.0}, ("NVDA", "2026-11-24"): {"volume": -3}},
        extra_bars=[{**FakeSource().bar("AAPL", "2026-11-21"), "date": "2026-11-21"}],
        splits={("AAPL", "2026-11-20"): 0.0},
    )
    report = ingest(db_path, source, DAY)
    quarantine = read_table(db_path, "quarantine").sort_values(["symbol", "date", "table_name"])
    assert quarantine[["table_name", "symbol", "date", "reason", "source", "partition_date"]].values.tolist() == [
        ["splits", "AAPL", "2026-11-20", "non-positive ratio", "fake", DAY],
        ["daily_bars", "AAPL", "2026-11-21", "not an NYSE trading day", "fake", DAY],
        ["daily_bars", "MSFT", DAY, "low above open or close", "fake", DAY],
        ["daily_bars", "NVDA", "2026-11-24", "negative volume", "fake", DAY],
    ]
    assert json.loads(quarantine.iloc[3]["payload"])["volume"] == -3
    bars = read_table(db_path, "daily_bars")
    keys = set(zip(bars["symbol"], bars["date"], strict=True))
    assert not keys & {("AAPL", "2026-11-21"), ("MSFT", DAY), ("NVDA", "2026-11-24")}
    assert len(bars) == len(UNIVERSE) * len(calendar.sessions(HISTORY_START, DAY)) - 2
    assert read_table(db_path, "splits").empty
    assert len(report.quarantined) == 4
    assert read_table(db_path, "ingestion_log")["quarantined"].tolist() == [4]
    assert report.symbols_with_bar_on_last == {"AAPL", "NVDA"}


def test_non_finite_and_overflowing_numbers_are_quarantined_and_the_rest_is_stored(db_path: Path) -> None:
    source = FakeSource(
        overrides={
            ("AAPL", "2026-11-24"): {"volume": float("inf")},
            ("MSFT", "2026-11-24"): {"volume": 2**63},
            ("MSFT", "2026-11-23"): {"volume": 1e300},
            ("NVDA", "2026-11-24"): {"high": float("inf")},
        }
    )
    report = ingest(db_path, source, DAY)
    reasons = {(r.symbol, r.date): r.reason for r in read_table(db_path, "quarantine").itertuples()}
    assert reasons == {
        ("AAPL", "2026-11-24"): "non-finite volume",
        ("MSFT", "2026-11-24"): "volume beyond a signed 64-bit integer",
        ("MSFT", "2026-11-23"): "volume beyond a signed 64-bit integer",
        ("NVDA", "2026-11-24"): "non-finite high",
    }
    bars = read_table(db_path, "daily_bars")
    assert len(bars) == len(UNIVERSE) * len(calendar.sessions(HISTORY_START, DAY)) - 4
    assert (
        bars["volume"].between(0, 2**63 - 1).all() and np.isfinite(bars[["open", "high", "low", "close"]]).all().all()
    )
    assert report.failures == {} and report.symbols_with_bar_on_last == set(UNIVERSE)


def test_a_bar_that_would_fail_the_jump_check_is_quarantined_before_the_commit(db_path: Path) -> None:
    ingest(db_path, FakeSource(), "2026-11-23")
    stored = FakeSource().bar("MSFT", "2026-11-23")["close"]
    spike = {f: FakeSource().bar("MSFT", "2026-11-24")[f] * 3 for f in ("open", "high", "low", "close")}
    split = FakeSource(splits={("NVDA", DAY): 4.0})  # NVDA's 75% drop on DAY is explained by its split
    source = FakeSource(overrides={("MSFT", "2026-11-24"): spike}, splits=split.splits)
    report = ingest(db_path, source, DAY)
    (row,) = read_table(db_path, "quarantine").itertuples()
    assert (row.symbol, row.date, row.table_name) == ("MSFT", "2026-11-24", "daily_bars")
    assert f"from the close {stored} on 2026-11-23, beyond the jump limit" in row.reason
    bars = read_table(db_path, "daily_bars")
    assert not ((bars["symbol"] == "MSFT") & (bars["date"] == "2026-11-24")).any()
    assert ((bars["symbol"] == "MSFT") & (bars["date"] == DAY)).any(), "the next bar is measured from 11-23"
    assert ((bars["symbol"] == "NVDA") & (bars["date"] == DAY)).any()
    assert unexplained_jumps(bars, read_table(db_path, "splits")).empty
    assert report.symbols_with_bar_on_last == set(UNIVERSE)


def test_an_unexpected_error_in_one_symbols_rows_names_it_and_its_source(db_path: Path) -> None:
    odd = {**FakeSource().bar("MSFT", "2026-11-24"), "date": ["2026-11-24"]}  # a list: unhashable, unforeseen
    report = ingest(db_path, FakeSource(extra_bars=[odd]), DAY)
    (reason,) = report.failures["MSFT"].values()
    assert reason.startswith("validating daily_bars of MSFT from fake failed: TypeError")
    quarantine = read_table(db_path, "quarantine")
    assert set(quarantine["symbol"]) == {"MSFT"}
    assert len(quarantine) == len(calendar.sessions(HISTORY_START, DAY)) + 1, "MSFT's rows are kept, in quarantine"
    assert set(read_table(db_path, "daily_bars")["symbol"]) == {"AAPL", "NVDA"}
    assert read_table(db_path, "ingestion_log")["status"].tolist() == ["partial"]


def test_a_malformed_csv_row_is_quarantined_with_file_and_line_and_the_file_is_stored(
    db_path: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    lines = [FakeSource().bar("AAPL", d) for d in calendar.sessions("2026-11-16", DAY)]
    text = ["date,open,high,low,close,volume"] + [
        f"{b['date']},{b['open']},{b['high']},{b['low']},{b['close']},{b['volume']}" for b in lines
    ]
    text[3] = text[3] + ",extra"
    text.insert(5, "2026-11-31,1,2,0.5,1.5,10")
    raw = "\n".join(text).encode().replace(b"2026-11-24,", b"2026-11-24,\xff", 1)
    (folder / "AAPL.csv").write_bytes(raw)
    writer = MarketDBWriter(db_path)
    try:
        ingest_sessions(writer, SourceChain([CsvSource(folder)]), ["AAPL"], dt.date(2026, 11, 16), "2026-11-16", DAY)
    finally:
        writer.close()
    quarantine = read_table(db_path, "quarantine").sort_values("reason")
    assert quarantine["reason"].tolist() == [
        "AAPL.csv line 4: has 7 fields, the header has 6",
        "AAPL.csv line 6: date '2026-11-31' is not a real date in YYYY-MM-DD form",
        "AAPL.csv line 9: byte 12 is not valid UTF-8",
    ]
    assert set(quarantine["source"]) == {"csv"}
    stored = read_table(db_path, "daily_bars")["date"].tolist()
    assert stored == [d for d in calendar.sessions("2026-11-16", DAY) if d not in ("2026-11-18", "2026-11-24")]


def test_every_rejected_copy_keeps_its_own_quarantine_row(db_path: Path) -> None:
    bar = FakeSource().bar("AAPL", DAY)
    source = FakeSource(extra_bars=[{**bar, "close": bar["close"] + 1, "high": bar["high"] + 1}])
    ingest(db_path, source, DAY)
    once = dump_tables(db_path)
    rows = read_table(db_path, "quarantine")
    assert rows["reason"].str.startswith("duplicate (symbol, date)").tolist() == [True, True]
    assert sorted(json.loads(p)["close"] for p in rows["payload"]) == [bar["close"], bar["close"] + 1]
    bars = read_table(db_path, "daily_bars")
    assert not ((bars["symbol"] == "AAPL") & (bars["date"] == DAY)).any()
    ingest(db_path, source, DAY)
    assert dump_tables(db_path)["quarantine"] == once["quarantine"]


def test_a_holiday_partition_does_nothing(db_path: Path) -> None:
    ingest(db_path, FakeSource(), DAY)
    before = dump_tables(db_path)
    source = FakeSource()
    report = ingest(db_path, source, "2026-11-26", first="2026-11-26")
    assert not report.is_session
    assert source.calls == []
    assert dump_tables(db_path) == before


def test_running_a_partition_twice_changes_nothing_but_the_log(db_path: Path) -> None:
    def source() -> FakeSource:
        return FakeSource(
            overrides={("MSFT", DAY): {"close": "n/a"}},
            splits={("NVDA", "2026-11-16"): 2.0},
            dividends={("AAPL", "2026-11-10"): 0.26},
        )

    ingest(db_path, source(), "2026-11-24")
    ingest(db_path, source(), DAY)
    once = dump_tables(db_path)
    ingest(db_path, source(), DAY)
    twice = dump_tables(db_path)
    assert twice.keys() == once.keys()
    for table in once:
        if table not in ("ingestion_log", "sqlite_sequence"):  # the audit log and its id counter grow
            assert twice[table] == once[table], f"rerun changed {table}"
    assert twice["ingestion_log"][: len(once["ingestion_log"])] == once["ingestion_log"]
    assert len(twice["ingestion_log"]) == len(once["ingestion_log"]) + 1
    assert len(once["splits"]) == len(once["dividends"]) == 1
    assert len(once["quarantine"]) == 1


def test_a_fallback_source_fills_in_and_each_row_records_its_source(db_path: Path) -> None:
    primary = FakeSource("primary", serves=["AAPL"])
    backup = FakeSource("backup")
    report = ingest(db_path, [primary, backup], DAY)
    bars = read_table(db_path, "daily_bars")
    assert bars.groupby("symbol")["source"].unique().map(list).to_dict() == {
        "AAPL": ["primary"],
        "MSFT": ["backup"],
        "NVDA": ["backup"],
    }
    assert report.failures == {}
    assert set(read_table(db_path, "symbol_metadata")["source"]) == {"primary", "backup"}


class FailsOnSecondFetch(FakeSource):
    """A source whose second fetch of a run raises what no fallback handles (a bug, a corrupt response)."""

    def fetch(self, symbols, start, end):
        if len(self.calls) == 1:
            raise RuntimeError(f"corrupt response for {symbols}")
        return super().fetch(symbols, start, end)


def test_a_range_run_that_fails_mid_fetch_leaves_the_database_as_it_was(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(db_path, FakeSource(), "2026-11-24", first="2026-11-24")
    before = dump_tables(db_path)
    monkeypatch.setattr(run, "ROWS_PER_FETCH", 40)  # two fetches for the range
    with pytest.raises(RuntimeError, match="corrupt response"):
        ingest(db_path, FailsOnSecondFetch(), DAY)
    assert dump_tables(db_path) == before


KILLED_RUN = """
import datetime as dt, os, signal, sys
from turbomode_dagster.ingestion.checks import unexplained_jumps
from turbomode_dagster.ingestion.run import ingest_sessions
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.storage.market_db import MarketDBWriter
from turbomode_dagster_tests.conftest import FakeSource

def die(self, *args, **kwargs):
    bars = self.con.execute("SELECT COUNT(*) FROM daily_bars").fetchone()[0]
    print("bars inside the transaction:", bars, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

MarketDBWriter.quarantine = die
writer = MarketDBWriter(__import__("pathlib").Path(sys.argv[1]))
ingest_sessions(writer, SourceChain([FakeSource()]), {symbols!r}, dt.date.fromisoformat({start!r}), {day!r})
print("survived", flush=True)
"""


def test_a_process_killed_mid_write_leaves_the_previous_state(db_path: Path) -> None:
    ingest(db_path, FakeSource(), "2026-11-24", symbols=UNIVERSE[:2])
    before = dump_tables(db_path)
    script = textwrap.dedent(KILLED_RUN).format(symbols=UNIVERSE, start=HISTORY_START, day=DAY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    killed = subprocess.run(
        [sys.executable, "-c", script, str(db_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    inside = len(before["daily_bars"]) + 2 + len(calendar.sessions(HISTORY_START, DAY))  # +11-25, +NVDA
    assert f"bars inside the transaction: {inside}" in killed.stdout, "the kill must come after the upserts"
    assert "survived" not in killed.stdout

    writer = MarketDBWriter(db_path)
    try:
        assert writer.con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        writer.close()
    assert dump_tables(db_path) == before, "a killed run must leave nothing behind"

    ingest(db_path, FakeSource(), DAY, first=DAY)
    bars = read_table(db_path, "daily_bars")
    assert bars.groupby("symbol")["date"].max().to_dict() == dict.fromkeys(UNIVERSE, DAY)
    assert len(bars) == len(UNIVERSE) * len(calendar.sessions(HISTORY_START, DAY))


@pytest.mark.parametrize("day", ["2026-11-28", "2026-11-26"])
def test_non_sessions_report_themselves(db_path: Path, day: str) -> None:
    report = ingest(db_path, FakeSource(), day, first=day)
    assert (report.is_session, report.rows_written, report.symbols_with_bar_on_last) == (False, {}, set())
