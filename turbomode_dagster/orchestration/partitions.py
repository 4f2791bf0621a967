"""Daily partitions that are exactly the NYSE sessions, in New York time, and the runs that cover them.

Session-keyed assets (partition D holds session D's rows, `SESSION_KEYED_ASSETS`) are materialised over
a range in one run (`BackfillPolicy.single_run()`); such a run carries Dagster's partition-range tags
instead of `dagster/partition`. `run_sessions` reads either, so everything that asks "which session is
this run for" (chaining, status, the failure record) sees a range run as covering its sessions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from turbomode_dagster import calendar
from turbomode_dagster.config import datasets_root
from turbomode_dagster.ingestion.catch_up import catch_up_start, sessions_of_labels
from turbomode_dagster.orchestration.io_managers import SessionDatasetIOManager
from turbomode_dagster.storage.columnar import DatabaseMissing
from turbomode_dagster.storage.market_db import MarketDataReader, market_db_path

# The session-keyed assets the Master DB holds (one ingestion run writes them together), then those kept
# as session datasets under the home.
MASTER_DB_ASSETS: tuple[dg.AssetKey, ...] = tuple(
    dg.AssetKey(name) for name in ("daily_bars", "corporate_actions", "fundamentals", "symbol_metadata")
)
DATASET_ASSETS: tuple[dg.AssetKey, ...] = tuple(
    dg.AssetKey(name) for name in ("adjusted_prices", "feature_panel", "training_samples")
)
# The assets whose partition D is session D's rows: a catch-up run fills every one of them that its job
# holds.
SESSION_KEYED_ASSETS: tuple[dg.AssetKey, ...] = MASTER_DB_ASSETS + DATASET_ASSETS


def trading_days(start: dt.date) -> dg.TimeWindowPartitionsDefinition:
    """One partition per NYSE session from `start`; weekends and holidays are excluded.

    `end_offset=1` makes today's partition exist from midnight, so the 22:45 run can target the
    session that closed at 16:00 the same day.
    """
    horizon = calendar.nyse().last_session.date()
    excluded = [dt.datetime.combine(day, dt.time()) for day in calendar.holidays(start, horizon)]
    return dg.TimeWindowPartitionsDefinition(
        start=dt.datetime.combine(start, dt.time()),
        fmt="%Y-%m-%d",
        cron_schedule="0 0 * * 1-5",
        timezone=calendar.TIMEZONE,
        end_offset=1,
        exclusions=excluded,
    )


def catch_up_range(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey], history_start: dt.date, day: str, home: Path
) -> tuple[str, str]:
    """[first session of `keys` missing before `day`, `day`]: what one run must cover so nothing is missing.

    A session counts as stored for a session-keyed key among `keys` (those of the job that will run) when
    Dagster has recorded it materialised and `home` holds it too (`held_sessions`): one Dagster instance
    may have recorded the runs of other homes. `(day, day)` when none is missing or none of `keys` is
    session-keyed.
    """
    keyed = [key for key in keys if key in SESSION_KEYED_ASSETS]
    held = held_sessions(home, keyed)
    recorded = {key: set(instance.get_materialized_partitions(key)) for key in keyed}
    stored = [recorded[key] if held[key] is None else recorded[key] & held[key] for key in keyed]
    return (catch_up_start(stored, history_start, day) if stored else day), day


def held_sessions(home: Path, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, set[str] | None]:
    """The sessions `home` holds of each session-keyed key: those its Master DB's ingestion log lists for
    the market data, those its session datasets record as written for the rest (None for a dataset
    written before datasets kept that record)."""
    ingested = _ingested_sessions(home) if any(key in MASTER_DB_ASSETS for key in keys) else set()
    datasets = SessionDatasetIOManager(root=datasets_root(home))
    return {key: ingested if key in MASTER_DB_ASSETS else datasets.dataset(key).written_sessions() for key in keys}


def _ingested_sessions(home: Path) -> set[str]:
    """The sessions ingestion committed to `home`'s Master DB; none before the first ingestion."""
    try:
        reader = MarketDataReader(market_db_path(home))
    except DatabaseMissing:
        return set()
    try:
        return sessions_of_labels(reader.ingested_labels())
    finally:
        reader.close()


def runs_for_session(instance: dg.DagsterInstance, session: str) -> list[dg.RunRecord]:
    """Runs for `session`, newest first: those tagged with it, and range runs that end at it.

    A range run is found by its last session only (Dagster cannot filter runs by a range containing a key):
    a catch-up run and a backfill up to tonight end at the night they are for.
    """
    tagged = instance.get_run_records(dg.RunsFilter(tags={PARTITION_NAME_TAG: session}))
    ranged = instance.get_run_records(dg.RunsFilter(tags={ASSET_PARTITION_RANGE_END_TAG: session}))
    return sorted([*tagged, *ranged], key=lambda record: record.storage_id, reverse=True)


def partition_tags(first: str, last: str) -> dict[str, str]:
    """A run's partition tags: `dagster/partition` for one session, the range tags for several
    (Dagster refuses both on one run)."""
    if first == last:
        return {PARTITION_NAME_TAG: first}
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def run_sessions(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """The first and last session a run covers, from its partition or partition-range tags; None if neither."""
    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG], tags[PARTITION_NAME_TAG]
    if ASSET_PARTITION_RANGE_START_TAG in tags and ASSET_PARTITION_RANGE_END_TAG in tags:
        return tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]
    return None


def session_label(tags: Mapping[str, str]) -> str | None:
    """The run's session (`2026-11-25`) or range (`2016-01-04...2026-11-25`, as Dagster's CLI writes it)."""
    covered = run_sessions(tags)
    if covered is None:
        return None
    first, last = covered
    return first if first == last else f"{first}...{last}"
