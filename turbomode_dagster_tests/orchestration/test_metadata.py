"""Range runs: the full metadata on the range's last session, the range itself on every other session."""

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from turbomode_dagster.orchestration.metadata import on_last_session, preview_table

PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11")
FULL = {"rows": dg.MetadataValue.int(7), "preview": preview_table(pd.DataFrame({"a": [1, 2]}))}


@dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
def sessions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    own = {key: {"rows": dg.MetadataValue.int(n)} for n, key in enumerate(context.partition_keys)}
    return dg.MaterializeResult(metadata=on_last_session(context, dict(FULL), per_session=own))


def _rows_by_partition(instance: dg.DagsterInstance) -> dict[str, int]:
    records = instance.fetch_materializations(dg.AssetKey("sessions"), limit=100).records
    return {r.asset_materialization.partition: r.asset_materialization.metadata["rows"].value for r in records}


def _metadata_by_partition(instance: dg.DagsterInstance) -> dict[str, set[str]]:
    records = instance.fetch_materializations(dg.AssetKey("sessions"), limit=100).records
    return {r.asset_materialization.partition: set(r.asset_materialization.metadata) for r in records}


def test_a_range_run_puts_the_full_metadata_on_its_last_session_only() -> None:
    keys = PARTITIONS.get_partition_keys()
    with dg.instance_for_test() as instance:
        tags = {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
        assert dg.materialize([sessions], instance=instance, tags=tags).success
        by_partition, rows = _metadata_by_partition(instance), _rows_by_partition(instance)
    assert set(by_partition) == set(keys)
    assert set(FULL) <= by_partition[keys[-1]]
    for key in keys[:-1]:
        assert by_partition[key] == {"run_sessions", "rows"}, key
    assert rows == {**{key: n for n, key in enumerate(keys[:-1])}, keys[-1]: 7}, "own numbers; the last: the run's"


def test_a_one_session_run_records_everything() -> None:
    with dg.instance_for_test() as instance:
        assert dg.materialize([sessions], instance=instance, partition_key="2024-01-03").success
        assert _metadata_by_partition(instance) == {"2024-01-03": set(FULL)}
