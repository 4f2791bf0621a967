"""Materialise a partition range in one run, as a single-run backfill does (Dagster's range tags)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

DATASET_ASSETS = ["adjusted_prices", "feature_panel", "training_samples"]


def materialize_range(
    assets: Sequence, resources: dict, start: str, end: str, selection: Sequence[str] = DATASET_ASSETS
) -> dg.ExecuteInProcessResult:
    """One run over the sessions start..end of `selection`; fails the test if the run fails."""
    result = dg.materialize(
        assets,
        resources=resources,
        selection=list(selection),
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
    )
    assert result.success
    return result
