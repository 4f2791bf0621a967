"""The Task 1 multi-asset, materialised into a temporary TURBOMODE_HOME with a fake source chain, over one
session or a range of sessions in one run."""

from __future__ import annotations

import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from turbomode_dagster import calendar
from turbomode_dagster.config import TaskId, load_settings
from turbomode_dagster.orchestration.assets.market_data import build_market_data_assets
from turbomode_dagster.orchestration.resources import MasterDBWriteAccess, TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.sources.chain import SourceChain
from turbomode_dagster.storage.market_db import MarketDBWriter
from turbomode_dagster_tests.conftest import DAY, HISTORY_START, SMALL_PATCHES, UNIVERSE, FakeSource, read_table

ASSET_KEYS = {"daily_bars", "corporate_actions", "fundamentals", "symbol_metadata"}


@pytest.fixture
def asset_config(make_config, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small config with retries off: a broken op fails the test now, not after 30 + 60 + 120 s of backoff."""
    path = make_config({**SMALL_PATCHES, "scheduled_tasks.0.retry_on_failure": False}, name="no_retries.json")
    monkeypatch.setenv("TURBOMODE_CONFIG", str(path))
    assert retry_policy_for(load_settings(path).task(TaskId.INGESTION)) is None
    return path


@pytest.fixture
def assets(asset_config: Path) -> dg.AssetsDefinition:
    return build_market_data_assets(load_settings(asset_config))


@pytest.fixture
def materialize(assets, asset_config: Path, home: Path):
    """materialize(*sources, first=..., day=...) -> result of one run over sessions first..day (by default the
    whole small history; first=day for one partition), with the small config and the temporary home."""

    def run(*sources: FakeSource, day: str = DAY, first: str = HISTORY_START) -> dg.ExecuteInProcessResult:
        ranged = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: day}
        return dg.materialize(
            [assets],
            resources={
                "turbomode": (turbomode := TurboModeHome(home=str(home), config_file=str(asset_config))),
                "master_db": MasterDBWriteAccess(turbomode=turbomode),
                "source_chain": SourceChain(list(sources)),
            },
            partition_key=day if first == day else None,
            tags=None if first == day else ranged,
            raise_on_error=False,
        )

    return run


def metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    """The asset's metadata: a range run records it on its last session, the range on every other one."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    events.sort(key=lambda e: e.materialization.partition)
    assert all("run_sessions" in e.materialization.metadata for e in events[:-1])
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_a_first_materialisation_writes_every_table_with_metadata(materialize, db_path: Path) -> None:
    result = materialize(FakeSource("primary", serves=["AAPL", "MSFT"]), FakeSource("backup"))
    assert result.success
    sessions = calendar.sessions(HISTORY_START, DAY)
    recorded = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    assert recorded == {(key, session) for key in ASSET_KEYS for session in sessions}, "one run, every session"

    bars = read_table(db_path, "daily_bars")
    assert len(bars) == len(UNIVERSE) * len(sessions)
    assert len(read_table(db_path, "symbol_metadata")) == len(read_table(db_path, "fundamentals")) == 3

    meta = metadata(result, "daily_bars")
    assert meta["rows_by_source"] == {"primary": 2 * len(sessions), "backup": len(sessions)}
    assert meta["symbols_failed"] == {}
    assert meta["quarantined_rows"] == 0
    assert meta["date_range"] == f"{HISTORY_START} .. {DAY}"
    assert meta["sessions_covered"] == len(sessions)
    assert meta["new_symbols_from_history"] == {}
    assert meta["rows_written"] == len(bars)
    preview = meta["preview"]
    assert len(preview.records) == 10
    assert [c.name for c in preview.schema.columns] == ["symbol", "date", "close", "volume", "source"]
    assert preview.records[-1].data["date"] == DAY
    assert metadata(result, "symbol_metadata")["rows_written"] == 3
    bars_event = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("daily_bars")][-1]
    raw = bars_event.materialization.metadata
    for key in ("rows_written", "quarantined_rows"):
        assert isinstance(raw[key], dg.IntMetadataValue), key  # the Plots tab draws ints and floats only
    assert metadata(result, "corporate_actions")["splits_written"] == 0

    evaluations = checks(result)
    assert evaluations.keys() == {"universe_complete", "no_unexplained_jumps"}
    assert all(c.passed for c in evaluations.values())
    assert evaluations["universe_complete"].metadata["coverage"].value == 1.0
    assert evaluations["universe_complete"].metadata["worst_session"].value == DAY


def test_one_partition_on_a_fresh_home_stores_just_its_session(materialize, db_path: Path) -> None:
    result = materialize(FakeSource(), first=DAY)
    assert result.success
    assert {e.partition for e in result.get_asset_materialization_events()} == {DAY}
    assert read_table(db_path, "daily_bars")["date"].unique().tolist() == [DAY]
    assert metadata(result, "daily_bars")["sessions_covered"] == 1


def test_completeness_is_judged_on_the_worst_session_of_the_range(materialize) -> None:
    drop = {field: FakeSource().bar("MSFT", "2026-11-12")[field] * 0.4 for field in ("open", "high", "low", "close")}
    result = materialize(FakeSource(overrides={("MSFT", "2026-11-12"): drop}))
    complete = checks(result)["universe_complete"]
    assert not complete.passed and not result.success
    assert complete.metadata["worst_session"].value == "2026-11-12"
    assert complete.metadata["coverage"].value == pytest.approx(2 / 3)
    assert complete.metadata["missing_symbols"].value == ["MSFT"]
    assert complete.metadata["sessions_below_floor"].value == 1


def test_the_asset_backfills_a_range_in_one_run(assets) -> None:
    assert assets.backfill_policy == dg.BackfillPolicy.single_run()


def test_quarantined_rows_and_failed_symbols_show_in_metadata(materialize, db_path: Path) -> None:
    # 2 of 3 symbols failing is well under the completeness floor: report them, and fail the blocking check.
    source = FakeSource("fake", serves=["AAPL"], overrides={("AAPL", "2026-11-24"): {"high": 1.0}})
    result = materialize(source)
    meta = metadata(result, "daily_bars")
    assert meta["quarantined_rows"] == 1
    assert meta["quarantine_reasons"] == {"high below open or close": 1}
    assert set(meta["symbols_failed"]) == {"MSFT", "NVDA"}
    assert "fake does not know MSFT" in meta["symbols_failed"]["MSFT"]
    assert read_table(db_path, "quarantine")["date"].tolist() == ["2026-11-24"]

    complete = checks(result)["universe_complete"]
    assert not complete.passed
    assert complete.severity == dg.AssetCheckSeverity.ERROR
    # The worst session is the one whose only bar was quarantined too.
    assert complete.metadata["worst_session"].value == "2026-11-24"
    assert complete.metadata["missing_symbols"].value == ["AAPL", "MSFT", "NVDA"]
    assert not result.success, "a failed blocking check fails the run"
    # The checked asset is still stored (what passed validation), as Dagster's blocking checks do.
    assert set(read_table(db_path, "daily_bars")["symbol"]) == {"AAPL"}


def test_a_source_that_was_down_shows_in_metadata(materialize) -> None:
    result = materialize(FakeSource("ibkr", unavailable="connection refused by 127.0.0.1:4002"), FakeSource("backup"))
    assert result.success
    meta = metadata(result, "daily_bars")
    assert list(meta["sources_down"]) == ["ibkr"] and "connection refused" in meta["sources_down"]["ibkr"]
    assert meta["rows_by_source"] == {"backup": meta["rows_written"]}


def test_an_unexplained_drop_is_quarantined_before_the_commit(materialize, db_path: Path) -> None:
    drop = {field: FakeSource().bar("MSFT", DAY)[field] * 0.4 for field in ("open", "high", "low", "close")}
    result = materialize(FakeSource(overrides={("MSFT", DAY): drop}))
    assert checks(result)["no_unexplained_jumps"].passed, "the bad bar never reached daily_bars"
    quarantine = read_table(db_path, "quarantine")
    assert quarantine[["symbol", "date"]].values.tolist() == [["MSFT", DAY]]
    assert "beyond the jump limit" in quarantine.loc[0, "reason"]
    bars = read_table(db_path, "daily_bars")
    assert not ((bars["symbol"] == "MSFT") & (bars["date"] == DAY)).any()
    assert checks(result)["universe_complete"].metadata["missing_symbols"].value == ["MSFT"]


def test_a_jump_already_stored_fails_the_check_on_a_rerun(materialize, db_path: Path) -> None:
    assert materialize(FakeSource()).success
    bad = {**FakeSource().bar("MSFT", "2026-11-10"), "close": 500.0, "high": 505.0}
    writer = MarketDBWriter(db_path)  # a bar stored before jumps were quarantined, or by hand
    try:
        with writer.transaction():
            writer.upsert("daily_bars", pd.DataFrame([bad]).assign(source="old"), "source", "2026-11-25T00:00:00")
    finally:
        writer.close()
    result = materialize(FakeSource(), first=DAY)  # tonight's partition; the bad bar is weeks old
    jumps = checks(result)["no_unexplained_jumps"]
    assert not jumps.passed, "the check guards the whole stored history, not only the partition's window"
    assert jumps.metadata["jumps"].value == 2  # up to the bad close and back down from it
    examples = [(r.data["symbol"], r.data["date"]) for r in jumps.metadata["examples"].value.records]
    assert examples == [("MSFT", "2026-11-10"), ("MSFT", "2026-11-11")]
    assert not result.success


def test_a_recorded_4_for_1_split_is_not_a_jump(materialize, db_path: Path) -> None:
    result = materialize(FakeSource(splits={("MSFT", DAY): 4.0}))
    assert result.success
    assert checks(result)["no_unexplained_jumps"].passed
    assert metadata(result, "corporate_actions")["splits_written"] == 1
    bars = read_table(db_path, "daily_bars").set_index(["symbol", "date"])
    assert bars.loc[("MSFT", DAY), "close"] < 0.3 * bars.loc[("MSFT", "2026-11-24"), "close"], "stored as traded"
    assert read_table(db_path, "splits")[["symbol", "date", "ratio"]].values.tolist() == [["MSFT", DAY, 4.0]]


def test_a_nightly_partition_after_a_first_load(materialize, db_path: Path) -> None:
    assert materialize(FakeSource(), day="2026-11-24").success
    source = FakeSource()
    result = materialize(source, first=DAY)
    assert result.success
    assert [(c[1].isoformat(), c[2].isoformat()) for c in source.calls] == [(DAY, DAY)]
    assert metadata(result, "daily_bars")["date_range"] == f"{DAY} .. {DAY}"
    assert metadata(result, "daily_bars")["rows_by_source"] == {"fake": 3}
    logged = read_table(db_path, "ingestion_log")["partition_date"].tolist()
    assert logged == [f"{HISTORY_START}...2026-11-24", DAY]


def test_a_day_that_is_not_a_session_is_not_a_partition(assets) -> None:
    keys = assets.partitions_def.get_partition_keys(current_time=datetime.datetime(2026, 12, 1))
    assert DAY in keys
    assert "2026-11-26" not in keys and "2026-11-28" not in keys


def test_the_home_resource_falls_back_to_the_environment(home: Path, asset_config: Path) -> None:
    resource = TurboModeHome()
    assert resource.path() == home.resolve()
    assert resource.settings().universe.symbols == tuple(UNIVERSE)
