"""Frames and pictures as Dagster metadata: preview tables with column types, PNGs embedded in markdown."""

from __future__ import annotations

import base64
from collections.abc import Iterable

import dagster as dg
import numpy as np
import pandas as pd

TYPE_NAMES = {"i": "int", "u": "int", "f": "float", "b": "bool"}


def preview_table(frame: pd.DataFrame, limit: int = 10) -> dg.TableMetadataValue:
    """The first `limit` rows of `frame` as a UI table."""
    head = frame.head(limit)
    schema = dg.TableSchema(
        columns=[dg.TableColumn(str(c), TYPE_NAMES.get(head[c].dtype.kind, "string")) for c in head.columns]
    )
    records = [dg.TableRecord({str(k): _cell(v) for k, v in row.items()}) for row in head.to_dict("records")]
    return dg.MetadataValue.table(records=records, schema=schema)


def _cell(value: object) -> object:
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else round(float(value), 6)
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value if isinstance(value, (int, bool, str)) or value is None else str(value)


def png_markdown(png: bytes, alt: str) -> dg.MarkdownMetadataValue:
    """A PNG shown on the asset page: markdown with the image as a base64 data URI, as Dagster's docs do."""
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def metadata_by_asset(materializations: Iterable[dg.AssetMaterialization]) -> dict[str, dict[str, object]]:
    """Each materialised asset's metadata as plain values, by asset key (the shape task_results reads)."""
    return {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()} for m in materializations}


def on_last_session(
    context: dg.AssetExecutionContext,
    metadata: dict[str, object],
    asset_key: dg.AssetKey | None = None,
    per_session: dict[str, dict[str, object]] | None = None,
) -> dict[str, object]:
    """Metadata for the caller to record: all of it for a run over one session; over a range, only the range.

    Dagster copies an asset's run-level metadata into the materialisation of every session of a range run
    (2,743 copies of the preview tables and pictures for a ten-year catch-up, hundreds of MB of event log),
    so the full metadata goes on the range's last session alone and every other session records the range
    and its own numbers from `per_session` (so the Plots tab trends them across the history); the last
    session carries the run's figures.
    """
    keys = context.partition_keys if context.has_partition_key_range else []
    if len(keys) <= 1:
        return metadata
    own = per_session or {}
    for key in keys[:-1]:
        if key in own:
            context.add_asset_metadata(own[key], asset_key=asset_key, partition_key=key)
    context.add_asset_metadata({**own.get(keys[-1], {}), **metadata}, asset_key=asset_key, partition_key=keys[-1])
    return {"run_sessions": dg.MetadataValue.text(f"{keys[0]}...{keys[-1]} ({len(keys)} sessions)")}
