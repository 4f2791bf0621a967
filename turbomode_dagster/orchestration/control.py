"""The seed's POST /scheduler/start and /scheduler/stop: every TurboMode schedule and sensor on or off.

Dagster keeps a schedule's or sensor's on/off state in the instance, keyed by a selector id made of the
code location's name, the repository and the instigator's name; so the remote objects are loaded here
from a code location named `turbomode`, and the state set here is the one the daemon obeys and the UI's
toggles show. An instigator without a stored state runs as its `default_status` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
from dagster._core.remote_representation.external import RemoteRepository, RemoteSchedule, RemoteSensor

from turbomode_dagster.orchestration.code_location import REPOSITORY_NAME, in_process_location_origin

RUNNING, STOPPED = "running", "stopped"


@dataclass(frozen=True)
class Switch:
    """One schedule or sensor and its state before and after a start or stop."""

    name: str
    kind: str  # "schedule" or "sensor"
    before: str
    after: str

    @property
    def changed(self) -> bool:
        """Whether the command flipped it."""
        return self.before != self.after


@contextmanager
def turbomode_repository(instance: dg.DagsterInstance) -> Iterator[RemoteRepository]:
    """The code location's repository as the webserver and daemon see it, loaded in this process."""
    with in_process_location_origin().create_location(instance) as location:
        yield location.get_repository(REPOSITORY_NAME)


def instigators(repository: RemoteRepository) -> list[RemoteSchedule | RemoteSensor]:
    """Every schedule and sensor of the repository, schedules first, each by name."""
    return [
        *sorted(repository.get_schedules(), key=lambda s: s.name),
        *sorted(repository.get_sensors(), key=lambda s: s.name),
    ]


def state_of(instance: dg.DagsterInstance, instigator: RemoteSchedule | RemoteSensor) -> str:
    """`running` or `stopped`: the stored state, or the default status when none is stored."""
    stored = instance.get_instigator_state(instigator.get_remote_origin_id(), instigator.selector_id)
    return RUNNING if instigator.get_current_instigator_state(stored).is_running else STOPPED


def switch_all(instance: dg.DagsterInstance, repository: RemoteRepository, on: bool) -> list[Switch]:
    """Turn every schedule and sensor on (`on`) or off; returns each one's state before and after."""
    switches = []
    for instigator in instigators(repository):
        before = state_of(instance, instigator)
        kind = "schedule" if isinstance(instigator, RemoteSchedule) else "sensor"
        if on and before == STOPPED:
            (instance.start_schedule if kind == "schedule" else instance.start_sensor)(instigator)
        elif not on and before == RUNNING:
            stop = instance.stop_schedule if kind == "schedule" else instance.stop_sensor
            stop(instigator.get_remote_origin_id(), instigator.selector_id, instigator)
        switches.append(Switch(instigator.name, kind, before, state_of(instance, instigator)))
    return switches
