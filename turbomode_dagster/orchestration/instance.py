"""The DAGSTER_HOME instance config (dagster.yaml), rendered from scheduler_config.json.

Run monitoring enforces each task's `dagster/max_runtime` (timeout_minutes) and must keep
`max_resume_run_attempts: 0` on the default run launcher; the run queue allows the config's
`max_concurrent_jobs` runs at once and `max_instances` runs per task; the database write pool
(`orchestration/pools.py`: every writer of either database, and maintenance) admits one step at a
time, so no two writers and no VACUUM overlap, and the daemon frees the slots of runs that ended
without giving them back (`turbomode_dagster.orchestration.pool_slots` covers killed runs with no daemon).
Telemetry is off. The instance class attaches runs of TurboMode's code made outside the UI to the code location
(`turbomode_dagster.orchestration.code_location.TurboModeInstance`), so the UI lists them under their jobs.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from turbomode_dagster.config import Settings, dagster_home_env
from turbomode_dagster.orchestration.code_location import TurboModeInstance
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.retries import TASK_TAG

SHIPPED_INSTANCE_YAML = Path(__file__).resolve().parent / "dagster.yaml"
# The daemon gives back pool slots of runs that ended without freeing them, this long after they end.
FREE_SLOTS_AFTER_SECONDS = 30


def instance_yaml(settings: Settings) -> str:
    """dagster.yaml for these settings."""
    defaults = settings.global_settings.job_defaults
    return f"""# Rendered from scheduler_config.json by `turbomode dagster-home`; edit the config, not this file.
instance_class:
  module: {TurboModeInstance.__module__}
  class: {TurboModeInstance.__name__}
telemetry:
  enabled: false
run_monitoring:
  enabled: true
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: {FREE_SLOTS_AFTER_SECONDS}
concurrency:
  runs:
    max_concurrent_runs: {settings.global_settings.max_concurrent_jobs}
    tag_concurrency_limits:
      - key: "{TASK_TAG}"
        value:
          applyLimitPerUniqueValue: true
        limit: {defaults.max_instances}
  pools:
    default_limit: 1  # {DATABASE_WRITE_POOL}: one database writer (or VACUUM) at a time
"""


def write_dagster_home(settings: Settings, folder: Path) -> Path:
    """Render dagster.yaml for `settings` into `folder` (created if needed); returns the file."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "dagster.yaml"
    file.write_text(instance_yaml(settings))
    return file


def prepare_dagster_home(settings: Settings, home: Path) -> Path:
    """DAGSTER_HOME if set, else `<TURBOMODE_HOME>/dagster_home`, rendered there.

    A user's DAGSTER_HOME keeps its dagster.yaml as it is; one without a dagster.yaml gets the rendered
    file, so `dagster` commands run against it later queue, time out and attach runs as TurboMode's do.
    """
    if env := dagster_home_env():
        if not (env / "dagster.yaml").exists():
            write_dagster_home(settings, env)
        return env
    folder = home / "dagster_home"
    write_dagster_home(settings, folder)
    return folder


def open_instance(folder: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance in `folder`, so runs launched here show in the UI."""
    folder.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.from_config(str(folder))
