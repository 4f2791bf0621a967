"""Materialise a partition range in one run, as a single-run backfill does (Dagster's range tags)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

DATASET_ASSETS = ["adjusted_prices", "feature_panel", "training_samples"]
MARKET_DATA = ["daily_bars", "corporate_actions", "fundamentals", "symbol_metadata"]


def materialize_range(
    assets: Sequence,
    resources: dict,
    start: str,
    end: str,
    selection: Sequence[str] = DATASET_ASSETS,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """One run over the sessions start..end of `selection`; fails the test if the run fails."""
    result = dg.materialize(
        assets,
        resources=resources,
        selection=list(selection),
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
        instance=instance,
    )
    assert result.success
    return result


def first_night(
    assets: Sequence, resources: dict, history_start: str, day: str, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    """A fresh home's first night: the session-keyed assets (market data and datasets) from `history_start` to
    `day` in one run, as `turbomode nightly` catches up, then every per-night asset for `day`.
    Returns the per-night run's result."""
    materialize_range(assets, resources, history_start, day, [*MARKET_DATA, *DATASET_ASSETS], instance=instance)
    keys = {key.to_user_string() for a in assets for key in a.keys}
    nightly = sorted(keys - set(MARKET_DATA) - set(DATASET_ASSETS))
    result = dg.materialize(assets, resources=resources, partition_key=day, selection=nightly, instance=instance)
    assert result.success
    return result
