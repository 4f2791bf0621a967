"""The batched SQLite event log: a range run's materialisations stored in one transaction per shard, row for row."""

import os
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from turbomode_dagster.orchestration import event_storage
from turbomode_dagster.orchestration.event_storage import SWITCHES, BatchedSqliteEventLogStorage

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")
INSTANCE_CLASS = (
    "instance_class:\n  module: turbomode_dagster.orchestration.code_location\n  class: TurboModeInstance\n"
)


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def session_rows(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": len(context.partition_keys)})


def _range_run(home: Path, yaml: str, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml + "telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    keys = PARTITIONS.get_partition_keys()
    instance = dg.DagsterInstance.get()
    tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    assert dg.materialize([session_rows], instance=instance, tags=tags).success
    return instance


def _index_rows(home: Path) -> dict[str, list[tuple]]:
    """What the cross-run index holds about the asset, without ids, run ids and times."""
    con = sqlite3.connect(home / "history" / "runs" / "index.db")
    events = con.execute(
        "SELECT dagster_event_type, asset_key, partition FROM event_logs WHERE asset_key IS NOT NULL ORDER BY id"
    ).fetchall()
    # values left out: a data version without a code version is derived from the run id
    tags = con.execute("SELECT asset_key, key FROM asset_event_tags ORDER BY id").fetchall()
    keys = con.execute("SELECT asset_key FROM asset_keys WHERE last_materialization IS NOT NULL").fetchall()
    return {"events": events, "tags": tags, "asset_keys": keys}


def test_a_range_run_is_stored_in_batches_with_the_rows_of_one_event_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    batches: list[int] = []
    store = BatchedSqliteEventLogStorage.store_event_batch
    monkeypatch.setattr(
        BatchedSqliteEventLogStorage,
        "store_event_batch",
        lambda self, events: (batches.append(len(events)), store(self, events))[1],
    )
    ours = _range_run(tmp_path / "ours", INSTANCE_CLASS, monkeypatch)
    assert isinstance(ours.event_log_storage, BatchedSqliteEventLogStorage)
    assert batches == [len(PARTITIONS.get_partition_keys())], "the step's materialisations arrive as one batch"

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")  # Dagster's own path: one event at a time
    stock = _range_run(tmp_path / "stock", "", monkeypatch)
    assert not isinstance(stock.event_log_storage, BatchedSqliteEventLogStorage)
    assert _index_rows(tmp_path / "ours") == _index_rows(tmp_path / "stock")
    key = dg.AssetKey("session_rows")
    assert ours.get_materialized_partitions(key) == stock.get_materialized_partitions(key)
    assert len(ours.get_materialized_partitions(key)) == len(PARTITIONS.get_partition_keys())


def test_the_switches_are_set_unless_the_environment_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "0")
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", raising=False)
    event_storage.set_event_switches()
    assert os.environ["DAGSTER_EVENT_BATCH_SIZE"] == "0"
    assert os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] == "1"
