"""A fresh home caught up in one run, then a night that adds one partition, read back from the instance.

The launcher (`partitions.catch_up_range` + `launch.execute_attached`, what `turbomode nightly` and `turbomode
run 1` do) runs here on a job over the market-data group alone, with the built-in sample source: Task 1's job
also holds the feature assets, which join the single-run layer in their own change.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from turbomode_dagster import calendar
from turbomode_dagster.config import load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.ingestion.catch_up import catch_up_start, sessions_of_labels
from turbomode_dagster.orchestration.assets.market_data import GROUP
from turbomode_dagster.orchestration.launch import execute_attached
from turbomode_dagster.orchestration.partitions import (
    SESSION_KEYED_ASSETS,
    catch_up_range,
    held_sessions,
    runs_for_session,
)
from turbomode_dagster.storage.session_dataset import SessionDataset
from turbomode_dagster_tests.conftest import DAY, HISTORY_START, SMALL_PATCHES, read_table

MARKET_DATA = SESSION_KEYED_ASSETS[:4]
START = calendar.as_date(HISTORY_START)


def test_the_first_missing_session_by_hand() -> None:
    sessions = calendar.sessions(HISTORY_START, "2026-11-24")
    assert catch_up_start([set(), set(sessions)], START, DAY) == HISTORY_START  # one asset has nothing
    assert catch_up_start([set(sessions)] * 2, START, DAY) == DAY  # nothing missing: the night alone
    holed = set(sessions) - {"2026-11-13"}
    assert catch_up_start([set(sessions), holed], START, DAY) == "2026-11-13"
    assert catch_up_start([], START, HISTORY_START) == HISTORY_START  # the first session has nothing before it
    with pytest.raises(ValueError, match="2026-11-26 is not an NYSE session"):
        catch_up_start([], START, "2026-11-26")


def test_ingestion_log_labels_name_their_sessions() -> None:
    assert sessions_of_labels([]) == set()
    assert sessions_of_labels(["2026-11-25"]) == {"2026-11-25"}
    # A range label spans its sessions only: Thanksgiving (11-26) and the weekend are not sessions.
    assert sessions_of_labels(["2026-11-24...2026-11-30", "2026-11-24"]) == {
        "2026-11-24",
        "2026-11-25",
        "2026-11-27",
        "2026-11-30",
    }


def test_a_dataset_holds_the_sessions_it_records_even_those_without_rows(tmp_path: Path) -> None:
    """A session-keyed dataset's record is what the home holds; the instance alone does not say it."""
    key = SESSION_KEYED_ASSETS[-1]
    assert held_sessions(tmp_path, [key]) == {key: set()}
    sessions = calendar.sessions("2026-11-23", DAY)
    no_rows = pd.DataFrame({"symbol": pd.Series(dtype=str), "date": pd.Series(dtype="datetime64[ns]")})
    SessionDataset(tmp_path.joinpath("datasets", *key.path)).write(no_rows, sessions)
    assert held_sessions(tmp_path, [key]) == {key: set(sessions)}


@pytest.fixture
def market_data_job(make_config, home: Path, monkeypatch: pytest.MonkeyPatch) -> dg.JobDefinition:
    """A job over the market-data group of the code location, on the sample source."""
    config = make_config({**SMALL_PATCHES, "sources.order": ["sample"]})
    monkeypatch.setenv("TURBOMODE_CONFIG", str(config))
    defs = build_definitions(load_settings(config))
    assets = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and GROUP in a.group_names_by_key.values()]
    job = dg.define_asset_job("market_data_catch_up", selection=dg.AssetSelection.groups(GROUP))
    return dg.Definitions(assets=assets, jobs=[job], resources=defs.resources).resolve_job_def(job.name)


def test_a_fresh_home_is_caught_up_in_one_run_and_a_night_adds_one_partition(market_data_job, home: Path) -> None:
    keys = list(market_data_job.asset_layer.selected_asset_keys)
    history = calendar.sessions(HISTORY_START, DAY)
    with dg.instance_for_test() as instance:
        first, last = catch_up_range(instance, keys, START, DAY, home)
        assert (first, last) == (HISTORY_START, DAY)
        result = execute_attached(instance, market_data_job, first, last)
        assert result.success
        (run,) = instance.get_runs()
        assert (run.tags[ASSET_PARTITION_RANGE_START_TAG], run.tags[ASSET_PARTITION_RANGE_END_TAG]) == (first, DAY)
        assert "dagster/partition" not in run.tags
        for key in MARKET_DATA:
            assert instance.get_materialized_partitions(key) == set(history), key
        assert [r.dagster_run.run_id for r in runs_for_session(instance, DAY)] == [run.run_id]
        bars = read_table(home / "market_data.db", "daily_bars")
        assert sorted(bars["date"].unique()) == history and len(bars) == 3 * len(history)

        night = calendar.next_session(DAY)
        assert catch_up_range(instance, keys, START, night, home) == (night, night)
        # The instance's records are not this home's: another home sharing the instance starts from scratch.
        assert catch_up_range(instance, keys, START, night, home.parent / "another") == (HISTORY_START, night)
        assert execute_attached(instance, market_data_job, night, night).success
        for key in MARKET_DATA:
            assert instance.get_materialized_partitions(key) == {*history, night}, key
        latest = instance.get_runs(limit=1)[0]
        assert latest.tags["dagster/partition"] == night
    assert len(read_table(home / "market_data.db", "daily_bars")) == 3 * (len(history) + 1)
