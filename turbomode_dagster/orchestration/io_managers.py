"""A Parquet IO manager: one file per asset partition under `$TURBOMODE_HOME/assets/`.

Files are written to a temporary name and renamed into place, so a killed run never leaves a
half-written partition; materialising a partition again replaces its file whole.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from turbomode_dagster.config import turbomode_home
from turbomode_dagster.storage.atomic import atomic_write


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as `<root>/<asset path>/<partition or 'all'>.parquet`."""

    root: str = ""

    def _base(self) -> Path:
        return Path(self.root) if self.root else turbomode_home() / "assets"

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        return self._base().joinpath(*key.path) / f"{partition or 'all'}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        """Write the frame atomically and record where it went."""
        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context.asset_key, partition)
        atomic_write(path, lambda staging: obj.to_parquet(staging, index=False))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "bytes": path.stat().st_size})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """Read the upstream partition's file; a missing one is named with how to make it."""
        partition = context.partition_key if context.has_partition_key else None
        path = self._path(context.upstream_output.asset_key, partition)
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist: materialise {context.upstream_output.asset_key.to_user_string()}"
                f"{' for ' + partition if partition else ''} first"
            )
        return pd.read_parquet(path)
