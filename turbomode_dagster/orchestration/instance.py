"""The DAGSTER_HOME instance config (dagster.yaml), rendered from scheduler_config.json.

Run monitoring enforces each task's `dagster/max_runtime` (timeout_minutes) and must keep
`max_resume_run_attempts: 0` on the default run launcher; the run queue allows the config's
`max_concurrent_jobs` runs at once and `max_instances` runs per task; the database write pool
(`orchestration/pools.py`: every writer of either database, and maintenance) admits one step at a
time, so no two writers and no VACUUM overlap, and the daemon frees the slots of runs that ended
without giving them back (`turbomode_dagster.orchestration.pool_slots` covers killed runs with no daemon).
Telemetry is off. The instance class attaches runs of TurboMode's code made outside the UI to the code location
(`turbomode_dagster.orchestration.code_location.TurboModeInstance`), so the UI lists them under their jobs.
Storage is Dagster's SQLite under DAGSTER_HOME, or PostgreSQL (`storage="postgres"`, the `postgres` extra):
run, event-log and schedule storage on one server whose address and credentials the file names only as
`env:` references to TURBOMODE_PG_*, so no credential is ever written to it.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Literal

import dagster as dg
import yaml

from turbomode_dagster.config import (
    POSTGRES_ENV,
    ConfigError,
    Settings,
    dagster_home_env,
    postgres_target,
    unset_variables,
)
from turbomode_dagster.orchestration.code_location import TurboModeInstance
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.retries import TASK_TAG
from turbomode_dagster.storage.atomic import atomic_write

SHIPPED_INSTANCE_YAML = Path(__file__).resolve().parent / "dagster.yaml"
# The daemon gives back pool slots of runs that ended without freeing them, this long after they end.
FREE_SLOTS_AFTER_SECONDS = 30
Storage = Literal["sqlite", "postgres"]
# SQLAlchemy 2 needs the driver named; psycopg2 is the one dagster-postgres installs.
POSTGRES_SCHEME = "postgresql+psycopg2"
CONNECT_TIMEOUT_SECONDS = 10


def instance_yaml(settings: Settings, storage: Storage = "sqlite") -> str:
    """dagster.yaml for these settings, with Dagster's default SQLite storage or PostgreSQL."""
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
""" + (_postgres_storage() if storage == "postgres" else "")


def _postgres_storage() -> str:
    fields = "".join(f"      {name}:\n        env: {var}\n" for name, var in POSTGRES_ENV.items())
    return f"""storage:  # runs, event log and schedules in PostgreSQL; the connection comes from the environment
  postgres:
    postgres_db:
      scheme: {POSTGRES_SCHEME}
{fields}"""


def rendered_storage(file: Path) -> Storage:
    """The storage a dagster.yaml uses: postgres when its `storage` block is dagster-postgres's, else sqlite.

    A file that is no YAML counts as sqlite here; Dagster reports it when it opens the instance.
    """
    try:
        document = yaml.safe_load(file.read_text()) if file.exists() else None
    except yaml.YAMLError:
        document = None
    storage = document.get("storage") if isinstance(document, dict) else None
    return "postgres" if isinstance(storage, dict) and "postgres" in storage else "sqlite"


def write_dagster_home(settings: Settings, folder: Path, storage: Storage = "sqlite") -> Path:
    """Render dagster.yaml for `settings` into `folder` (created if needed), replacing it whole; returns the file.

    PostgreSQL storage needs every TURBOMODE_PG_* variable set (a ConfigError names those missing).
    """
    if storage == "postgres":
        postgres_target()
    file = folder / "dagster.yaml"
    text = instance_yaml(settings, storage)
    atomic_write(file, lambda path: path.write_text(text))
    return file


def check_postgres(settings: Settings) -> str:
    """Connect to the TURBOMODE_PG_* server as a rendered instance would, creating Dagster's tables there.

    Returns where it connected (user@host:port/db); a ConfigError says why it could not.
    """
    target = postgres_target()
    _require_postgres_driver("environment")
    import psycopg2

    try:  # one quick attempt first: Dagster itself retries a failed connection for about 12 s
        psycopg2.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            dbname=target.db,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        ).close()
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError("environment", [f"PostgreSQL {target}: cannot connect: {reason}"]) from exc
    with tempfile.TemporaryDirectory(prefix="turbomode-dagster-home-") as scratch:
        write_dagster_home(settings, Path(scratch), "postgres")
        open_instance(Path(scratch)).dispose()
    return str(target)


def prepare_dagster_home(settings: Settings, home: Path) -> Path:
    """DAGSTER_HOME if set, else `<TURBOMODE_HOME>/dagster_home`, rendered there.

    A user's DAGSTER_HOME keeps its dagster.yaml as it is; one without a dagster.yaml gets the rendered
    file, so `dagster` commands run against it later queue, time out and attach runs as TurboMode's do.
    The folder under the home is re-rendered from the config each time, keeping the storage it was
    rendered with (`turbomode dagster-home --storage postgres` there stays PostgreSQL).
    """
    if env := dagster_home_env():
        if not (env / "dagster.yaml").exists():
            write_dagster_home(settings, env)
        return env
    folder = home / "dagster_home"
    write_dagster_home(settings, folder, rendered_storage(folder / "dagster.yaml"))
    return folder


def open_instance(folder: Path) -> dg.DagsterInstance:
    """The persistent Dagster instance in `folder`, so runs launched here show in the UI.

    A PostgreSQL instance whose variables are unset, whose server does not answer or refuses the login
    is a ConfigError naming the file and the reason (no traceback for what the user can fix).
    """
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "dagster.yaml"
    if rendered_storage(file) != "postgres":
        return dg.DagsterInstance.from_config(str(folder))
    _require_postgres_driver(file)
    references = _env_references(yaml.safe_load(file.read_text())["storage"], "storage")
    unset = set(unset_variables(list(references)))
    if unset:
        raise ConfigError(
            str(file),
            [f"{path}: environment variable {name} is not set" for name, path in references.items() if name in unset],
        )
    try:
        return dg.DagsterInstance.from_config(str(folder))
    except Exception as exc:
        reason = _connection_failure(exc)
        if reason is None:
            raise
        raise ConfigError(str(file), [f"storage.postgres: cannot connect: {reason}"]) from exc


def _env_references(node: object, path: str) -> dict[str, str]:
    """Every `{env: NAME}` in a dagster.yaml block, by NAME, with the dotted path that reads it."""
    if isinstance(node, dict) and set(node) == {"env"} and isinstance(node["env"], str):
        return {node["env"]: path}
    if isinstance(node, dict):
        return {name: at for key, value in node.items() for name, at in _env_references(value, f"{path}.{key}").items()}
    return {}


def _require_postgres_driver(source: object) -> None:
    if importlib.util.find_spec("dagster_postgres") is None:
        raise ConfigError(
            str(source), ['storage.postgres: dagster-postgres is not installed: pip install -e ".[postgres]"']
        )


def _connection_failure(exc: BaseException) -> str | None:
    """The server's own first line when `exc` (or what caused it) is a failed connection, else None."""
    import sqlalchemy.exc

    while exc is not None:
        if isinstance(exc, sqlalchemy.exc.OperationalError):
            return str(exc.orig).strip().splitlines()[0]
        exc = exc.__cause__ or exc.__context__
    return None
