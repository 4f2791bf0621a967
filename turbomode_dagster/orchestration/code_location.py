"""The TurboMode code location as the webserver and daemon know it, and runs attached to it.

The UI lists a run under its job only when the run carries a remote origin with the code location's
name (`turbomode`, from workspace.yaml and pyproject.toml) and repository (`__repository__`): it filters
a job's runs by the label `__repository__@turbomode`. Runs that the UI, a schedule or a sensor launch
have one; runs created in a plain Python process (`execute_in_process`, `dagster job execute`) do not.
`turbomode` commands create theirs with `job_origin`, and `TurboModeInstance` (dagster.yaml's
`instance_class`) gives one to every run of this code location that arrives without one.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster._core.code_pointer import FileCodePointer, ModuleCodePointer, PackageCodePointer
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.instance.ref import InstanceRef
from dagster._core.origin import JobPythonOrigin
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from turbomode_dagster.orchestration.event_storage import default_storage_data, set_event_switches

LOCATION_NAME = "turbomode"
MODULE = "turbomode_dagster.definitions"
REPOSITORY_NAME = "__repository__"  # the name Dagster gives the repository of a `Definitions` object
DEFINITIONS_FILE = Path(__file__).resolve().parents[1] / "definitions.py"


def location_origin() -> ManagedGrpcPythonEnvCodeLocationOrigin:
    """The origin the webserver builds from workspace.yaml's `python_module` entry for this location."""
    return ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name=MODULE), location_name=LOCATION_NAME
    )


def job_origin(job_name: str) -> RemoteJobOrigin:
    """The remote origin of one of this location's jobs: what attaches a run to the job in the UI."""
    return RemoteJobOrigin(RemoteRepositoryOrigin(location_origin(), REPOSITORY_NAME), job_name)


def reconstructable_job(job_name: str) -> ReconstructableJob:
    """One of this location's jobs as another process rebuilds it: this module's `defs`, imported by this Python."""
    repository = ReconstructableRepository.for_module(MODULE, "defs", working_directory=os.getcwd())
    return repository.get_reconstructable_job(job_name)


def job_code_origin(job_name: str) -> JobPythonOrigin:
    """How a run worker reconstructs the job."""
    return reconstructable_job(job_name).get_python_origin()


def in_process_location_origin() -> InProcessCodeLocationOrigin:
    """The same location loaded in this process (for remote schedules and sensors without a server)."""
    return InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name=MODULE), location_name=LOCATION_NAME
    )


def is_turbomode_code(origin: JobPythonOrigin | None) -> bool:
    """Whether a run's Python origin points at TurboMode's definitions (by module or by file)."""
    if origin is None:
        return False
    pointer = origin.repository_origin.code_pointer
    if isinstance(pointer, ModuleCodePointer | PackageCodePointer):
        return pointer.module == MODULE
    if isinstance(pointer, FileCodePointer):
        path = Path(pointer.working_directory or ".", pointer.python_file)
        return path.resolve() == DEFINITIONS_FILE
    return False


class TurboModeInstance(dg.DagsterInstance):
    """The Dagster instance with two additions: a run of TurboMode's code created without a remote origin
    (`dagster job execute -m turbomode_dagster.definitions`, `dagster asset materialize`) gets the
    TurboMode code location's, so the UI lists it under its job like a run launched from the UI; and
    SQLite storage that records a range run's materialisations in batches (see `event_storage`)."""

    @classmethod
    def config_schema(cls) -> dict:
        """No settings of its own (Dagster asks a custom instance class for its config schema)."""
        return {}

    def __init__(self, *args: object, **kwargs: object) -> None:
        set_event_switches()
        super().__init__(*args, **kwargs)

    @staticmethod
    def config_defaults(base_dir: str):
        """The stock instance's defaults, with SQLite storage whose event log writes a batch in one transaction."""
        return {**InstanceRef.config_defaults(base_dir), "storage": default_storage_data(base_dir)}

    def create_run_for_job(
        self,
        job_def: dg.JobDefinition,
        *args: object,
        remote_job_origin: RemoteJobOrigin | None = None,
        job_code_origin: JobPythonOrigin | None = None,
        **kwargs: object,
    ) -> dg.DagsterRun:
        """As Dagster's, with the code location's origin filled in for an unattached TurboMode run."""
        if remote_job_origin is None and is_turbomode_code(job_code_origin):
            remote_job_origin = job_origin(job_def.name)
        return super().create_run_for_job(
            job_def, *args, remote_job_origin=remote_job_origin, job_code_origin=job_code_origin, **kwargs
        )
