"""A throw-away PostgreSQL server for the PostgreSQL-backed instance tests, and a fresh database per test.

initdb into a temporary folder, `pg_ctl start` on 127.0.0.1 at a free port with its socket in that folder
(about a second), `pg_ctl stop -m immediate` and the folder removed at the end, whatever happened. Debian's
binaries are found on PATH or in /usr/lib/postgresql/<version>/bin. initdb and pg_ctl refuse to run as
root, so under root (CI) the server runs as `nobody`. Without PostgreSQL binaries the tests are skipped
and say so; `.ci/run` installs them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from turbomode_dagster.config import POSTGRES_ENV

SUPERUSER = "turbomode"
PASSWORD = "pg-test-secret-5f2c"  # the tests check it is never written to a file
UNPRIVILEGED = "nobody"


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens and how to log in."""

    port: int
    folder: Path
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    password: str = PASSWORD

    def connect(self, db: str = "postgres"):
        """A psycopg2 connection in autocommit mode."""
        con = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=db)
        con.autocommit = True
        return con


@dataclass(frozen=True)
class PostgresDatabase:
    """One test's empty database on the server, set as TURBOMODE_PG_* in the test's environment."""

    server: PostgresServer
    name: str

    def query(self, sql: str) -> list[tuple]:
        """The rows of one query, read straight from the database (not through Dagster)."""
        con = self.server.connect(self.name)
        try:
            with con.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            con.close()


def postgres_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    if found := shutil.which("initdb"):
        return Path(found).resolve().parent  # Debian's links on PATH point into the versioned folder
    versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    return max(versions, key=lambda folder: int(folder.parent.name)) if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user() -> dict:
    """subprocess arguments that drop root to `nobody` (initdb and pg_ctl refuse root); none otherwise."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        pytest.skip(f"running as root and there is no '{UNPRIVILEGED}' user to run PostgreSQL as")
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session, stopped and removed at the end."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql, or run .ci/run")
    drop = _as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="turbomode-postgres-"))
    if drop:
        os.chown(folder, drop["user"], drop["group"])
    data, log, password_file = folder / "data", folder / "server.log", folder / "password"
    password_file.write_text(PASSWORD)
    if drop:
        os.chown(password_file, drop["user"], drop["group"])
    server = PostgresServer(port=_free_port(), folder=folder)
    options = f"-c listen_addresses={server.host} -p {server.port} -k {folder} -c fsync=off -c full_page_writes=off"
    env = {**os.environ, "LC_ALL": "C"}

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=60, **drop)

    initdb = [str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={password_file}"]
    start = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "30", "start"]
    try:
        for step in ([*initdb, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"], start):
            done = pg(*step)
            if done.returncode != 0:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"{Path(step[0]).name} failed ({done.returncode}): {done.stderr}{done.stdout}{tail}")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            pg(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> PostgresDatabase:
    """A new empty database on the session's server, its connection set in TURBOMODE_PG_*."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    con = postgres_server.connect()
    try:
        with con.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
    values = {
        "hostname": postgres_server.host,
        "port": str(postgres_server.port),
        "username": postgres_server.user,
        "password": postgres_server.password,
        "db_name": name,
    }
    for field_name, var in POSTGRES_ENV.items():
        monkeypatch.setenv(var, values[field_name])
    return PostgresDatabase(postgres_server, name)
