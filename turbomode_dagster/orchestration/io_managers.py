"""IO managers: per-night Parquet files and session datasets, each under a local folder or an fsspec URL.

`ParquetIOManager` keeps one file per partition of a per-night asset (the model's metrics, its
out-of-fold predictions) under its `root`: a local folder or an fsspec URL (`s3://bucket/assets`,
`memory://assets`), by default TURBOMODE_ASSETS_URL or `$TURBOMODE_HOME/assets`, read and written
through `universal_pathlib`. `SessionDatasetIOManager` keeps the session-keyed assets (adjusted prices,
features, training samples) as one dataset each under its `root`, by default TURBOMODE_DATASETS_URL or
`$TURBOMODE_HOME/datasets`, appended by session. Both write each file whole (`storage.atomic`): a local
one under a temporary name renamed into place, a remote one as one upload. Per-night files are
written compactly (`storage.compact_parquet`): the out-of-fold predictions are most of a night's bytes,
and readers get the same frame back.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
from upath import UPath

from turbomode_dagster.config import assets_root, datasets_root
from turbomode_dagster.storage.atomic import replace_file
from turbomode_dagster.storage.compact_parquet import write_compact_parquet
from turbomode_dagster.storage.locations import location
from turbomode_dagster.storage.session_blocks import WrittenRange
from turbomode_dagster.storage.session_dataset import SessionDataset


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as `<root>/<asset path>/<partition or 'all'>.parquet`; `root` a folder or an fsspec URL."""

    root: str = ""

    def _base(self) -> Path | UPath:
        """`root` (else TURBOMODE_ASSETS_URL, else `$TURBOMODE_HOME/assets`): a local one as a plain `Path`."""
        return location(self.root or assets_root())

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path | UPath:
        return self._base().joinpath(*key.path, f"{partition or 'all'}.parquet")

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        """Write the frame (atomically, or as one upload) and record where it went and its size."""
        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context.asset_key, partition)
        size = replace_file(path, lambda staging: write_compact_parquet(obj, staging))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "bytes": size})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """Read the upstream partition's file; a missing one is named with how to make it."""
        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context.upstream_output.asset_key, partition)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: materialise {context.upstream_output.asset_key.to_user_string()}"
                f"{' for ' + partition if partition else ''} first"
            )
        wanted = _read_options(context.definition_metadata)
        if isinstance(path, Path):
            return pd.read_parquet(path, **wanted)  # pyarrow reads a local file itself, no Python file object
        with path.open("rb") as file:
            return pd.read_parquet(file, **wanted)


def _read_options(metadata: dict | None) -> dict:
    """pd.read_parquet options from an input's metadata: `columns` to read only those, `categorical` to read
    those text columns as pandas categoricals (one code a row instead of a Python string a row)."""
    metadata = metadata or {}
    options = {}
    if metadata.get("columns"):
        options["columns"] = list(metadata["columns"])
    if metadata.get("categorical"):
        options["read_dictionary"] = list(metadata["categorical"])
    return options


class SessionDatasetIOManager(dg.ConfigurableIOManager):
    """Session-keyed assets as `SessionDataset`s under `<root>/<asset>/`: `root` a folder or an fsspec URL
    (default TURBOMODE_DATASETS_URL, else `$TURBOMODE_HOME/datasets`).

    handle_output replaces the rows of every partition key of the run (one session, or a whole range in a
    single-run backfill) with the returned frame's rows. load_input hands the downstream the dataset
    itself rather than a frame: each consumer reads the window it needs (the features an anchored block
    of prices, training every matured sample up to its night, the scanner one session), which no
    partition mapping expresses, and a frame of the whole history would be read for nothing. An asset
    whose rows are keyed by another column than `date` names it in its metadata as `session_column`.
    """

    root: str = ""

    def dataset(self, key: dg.AssetKey, definition_metadata: dict | None = None) -> SessionDataset:
        """The dataset of asset `key`."""
        base = location(self.root or datasets_root())
        column = (definition_metadata or {}).get("session_column", "date")
        return SessionDataset(base.joinpath(*key.path), key=str(getattr(column, "value", column)))

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | WrittenRange) -> None:
        """Write the run's sessions (or, for an asset that wrote its range block by block through `dataset`,
        check it wrote exactly them); metadata: the sessions, bytes written, the dataset's size."""
        if not context.has_asset_partitions:
            raise ValueError(f"{context.asset_key.to_user_string()}: a session dataset needs a partitioned asset")
        dataset = self.dataset(context.asset_key, context.definition_metadata)
        sessions = context.asset_partition_keys
        if isinstance(obj, WrittenRange):
            if sorted(obj.sessions) != sorted(sessions):
                raise ValueError(
                    f"{context.asset_key.to_user_string()}: wrote {len(obj.sessions)} session(s), "
                    f"the run holds {len(sessions)}"
                )
            written = obj.bytes_written
        else:
            written = dataset.write(obj, sessions)
        context.add_output_metadata(
            {
                "path": dg.MetadataValue.path(str(dataset.root)),
                "sessions_written": dg.MetadataValue.int(len(sessions)),
                "bytes_written": dg.MetadataValue.int(written),
                "dataset_bytes": dg.MetadataValue.int(dataset.bytes()),
            }
        )

    def load_input(self, context: dg.InputContext) -> SessionDataset:
        """The upstream asset's dataset, for the consumer to read its window from."""
        upstream = context.upstream_output
        return self.dataset(upstream.asset_key, upstream.definition_metadata)
