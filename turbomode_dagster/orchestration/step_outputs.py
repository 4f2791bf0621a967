"""What one step hands the next within a run: pickles under `$TURBOMODE_HOME/steps/<run_id>/`.

The learner steps of `models.learner_steps` pass their fits (out-of-fold probabilities and the final
model) to the stacking step this way: every executor's steps see the home, a process per step or a Dask
worker alike. The stacking step removes its run's folder once it has published; a run that failed keeps
it (a re-execution from the failure reads the fits that succeeded) until weekly maintenance sweeps it
(the default folder; a `root` elsewhere, such as an fsspec URL, is the operator's to expire).
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import dagster as dg
from upath import UPath

from turbomode_dagster.config import steps_folder
from turbomode_dagster.storage.atomic import replace_file
from turbomode_dagster.storage.locations import location


def steps_root(root: str = "") -> Path | UPath:
    """`root` (a folder or an fsspec URL), else `$TURBOMODE_HOME/steps`."""
    return location(root or steps_folder())


class StepOutputIOManager(dg.ConfigurableIOManager):
    """Pickles an op's output to `<root>/<run_id>/<step_key>/<output>.pkl`, written whole (`storage.atomic`)."""

    root: str = ""

    def _path(self, context: dg.OutputContext) -> Path | UPath:
        return steps_root(self.root) / context.run_id / context.step_key / f"{context.name}.pkl"

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        """Pickle `obj` for the run's later steps and record its size."""
        path = self._path(context)
        size = replace_file(path, lambda staging: staging.write_bytes(pickle.dumps(obj, protocol=5)))
        context.add_output_metadata({"handed_on_bytes": dg.MetadataValue.int(size)})

    def load_input(self, context: dg.InputContext) -> object:
        """The upstream step's pickle; a missing one says which step and run should have written it."""
        path = self._path(context.upstream_output)
        if not path.exists():
            upstream = context.upstream_output
            raise FileNotFoundError(
                f"{path} does not exist: step {upstream.step_key} of run {upstream.run_id} did not hand on "
                f"{upstream.name} (removed once that run published, or swept by weekly maintenance); "
                "re-execute the whole run"
            )
        return pickle.loads(path.read_bytes())

    def discard_run(self, run_id: str) -> None:
        """Remove everything the run's steps handed on; nothing to remove is fine."""
        folder = steps_root(self.root) / run_id
        if isinstance(folder, Path):
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.exists():
            folder.fs.rm(folder.path, recursive=True)
