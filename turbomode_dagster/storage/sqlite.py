"""SQLite connections shared by both databases: WAL, busy timeout, read-only URIs, versioned migrations.

A read-only handle is opened with a `mode=ro` URI, so SQLite itself refuses writes through it, and carries
an authorizer that denies everything but reading: no ATTACH (which could open the same file read-write),
no PRAGMA that sets a value (`query_only = OFF`), no DDL or DML.

Each database declares an ordered list of migrations; `migrate` applies the missing ones in one
transaction and records the version, which upgrades an older file in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


class DatabaseMissing(FileNotFoundError):
    """A read-only consumer asked for a database that ingestion has not created yet."""


def connect_read_write(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a database for writing, in WAL mode with a busy timeout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA foreign_keys = ON")
    return con


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing database through a `mode=ro` URI: any write through it raises."""
    if not path.exists():
        raise DatabaseMissing(f"{path} does not exist yet: run ingestion (job run_ingestion) first")
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    con.execute("PRAGMA query_only = ON")
    con.set_authorizer(_read_only_authorizer)
    return con


# Actions a reader needs: plain queries (with functions and recursive CTEs) and transactions around them.
_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
    | {sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT}
)
# PRAGMAs that only report: asked without a value, or (the second set) about a named table or index.
_REPORTING_PRAGMAS = frozenset(
    {
        "table_list", "database_list", "data_version", "schema_version", "user_version", "page_count",
        "page_size", "freelist_count", "journal_mode", "busy_timeout", "query_only", "compile_options",
    }
)  # fmt: skip
_LOOKUP_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
    | {"integrity_check", "quick_check"}
)


def _read_only_authorizer(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    """sqlite3 authorizer for read-only handles: allow reads and reporting PRAGMAs, deny the rest."""
    if action in _READ_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        pragma = (arg1 or "").lower()
        if pragma in _LOOKUP_PRAGMAS or (arg2 is None and pragma in _REPORTING_PRAGMAS):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction: everything inside lands together or not at all."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def schema_version(con: sqlite3.Connection) -> int:
    """The migration level recorded in the file (0 for a new or pre-versioning file)."""
    has_table = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has_table:
        return 0
    row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(con: sqlite3.Connection, migrations: Sequence[str]) -> int:
    """Apply the migrations the file lacks (migration i brings it to version i + 1); return the version."""
    current = schema_version(con)
    if current > len(migrations):
        raise RuntimeError(
            f"database schema version {current} is newer than this code knows ({len(migrations)}): "
            "upgrade turbomode_dagster"
        )
    if current == len(migrations):
        return current
    with transaction(con):
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        for version, script in enumerate(migrations[current:], start=current + 1):
            for statement in _statements(script):
                con.execute(statement)
            con.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return len(migrations)


def _statements(script: str) -> list[str]:
    """Split a migration script on semicolons (our DDL holds no semicolons inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def table_names(con: sqlite3.Connection) -> set[str]:
    """Names of the tables in the database."""
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
