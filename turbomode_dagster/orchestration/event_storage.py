"""Dagster's SQLite storage with one transaction per batch of asset events, and the switches that batch them.

A single-run backfill of ten years records one materialisation per asset and session: about 19,000 events
for the seven session-keyed assets. Dagster's SQLite event log stores each in its own two connections and
commits (run shard, then the cross-run index): measured 25-60 ms an event on two busy cores, ten minutes and
more for a history load. Dagster hands a partitioned step's materialisations over as one batch when
`DAGSTER_EVENT_BATCH_SIZE` is set, but its SQLite storage then still stores them one by one;
`BatchedSqliteEventLogStorage` writes the batch in one transaction per shard, row for row what
`store_event` writes. `TurboModeInstance` (dagster.yaml's `instance_class`) makes this storage its default
and sets the switches in every process that loads the instance: the CLI, `dagster dev`, the daemon and run
workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    SqliteRunStorage,
    SqliteScheduleStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData

EVENT_BATCH_SIZE = 1000
# One "materialization planned" event per asset of a range run rather than per asset and partition (10,964
# events written before a ten-year catch-up of the market data started). Its cost: partitions of a failed
# range run show as missing, not failed.
SWITCHES = {"DAGSTER_EVENT_BATCH_SIZE": str(EVENT_BATCH_SIZE), "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1"}


def set_event_switches() -> None:
    """Turn Dagster's event batching and range-planned events on, unless the environment says otherwise."""
    for name, value in SWITCHES.items():
        os.environ.setdefault(name, value)


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storing a batch of one run's asset events in one transaction per shard."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The rows `store_event` writes for each event, committed once for the run shard and once for the index."""
        if not _one_run_of_asset_events(events):
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            for event, statement in zip(events, statements, strict=True):
                with db_result(conn, statement) as result:
                    event_id = result.inserted_primary_key[0]
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_event(conn, event, event_id)


def _one_run_of_asset_events(events: Sequence[EventLogEntry]) -> bool:
    """Whether every event is an asset event of the same run: the only kind the batch path writes."""
    return bool(events) and all(
        event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.run_id == events[0].run_id
        for event in events
    )


class TurboModeSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage under DAGSTER_HOME, with the batched event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict) -> TurboModeSqliteStorage:
        """As Dagster's, building this class (Dagster's own names its class explicitly)."""
        return cls.from_local(inst_data=inst_data, **config_value)


def default_storage_data(base_dir: str) -> ConfigurableClassData:
    """dagster.yaml's `storage` when it names none: this SQLite storage under `base_dir`."""
    return ConfigurableClassData(
        TurboModeSqliteStorage.__module__, TurboModeSqliteStorage.__name__, f"base_dir: {base_dir}\n"
    )
