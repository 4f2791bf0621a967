"""Check, checkpoint and VACUUM one SQLite database, measuring the bytes it gives back.

`PRAGMA integrity_check` runs first; a database that fails it (or cannot even be read) is left exactly
as it is, never checkpointed or vacuumed, so a damaged file stays available for recovery. A healthy one
is checkpointed with `wal_checkpoint(TRUNCATE)`, vacuumed, and checkpointed again, so the WAL is empty
and the file holds no free pages. A second run in a row gives back nothing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from turbomode_dagster.storage.sqlite import connect_read_write

WAL_SUFFIX = "-wal"
MAX_MESSAGES = 20  # integrity_check lists every problem; the first twenty say enough


@dataclass(frozen=True)
class DatabaseResult:
    """What maintenance found and did for one database file."""

    name: str
    path: Path
    present: bool
    integrity: tuple[str, ...]  # ("ok",) when healthy, else SQLite's messages
    vacuumed: bool
    bytes_before: int
    bytes_after: int

    @property
    def intact(self) -> bool:
        """True when the file is absent (nothing to damage) or passed integrity_check."""
        return not self.present or self.integrity == ("ok",)

    @property
    def bytes_reclaimed(self) -> int:
        """Bytes of file plus WAL given back (never negative: a file cannot be blamed for growing its WAL)."""
        return max(self.bytes_before - self.bytes_after, 0)


def database_bytes(path: Path) -> int:
    """Size of the database file plus its write-ahead log."""
    wal = path.with_name(path.name + WAL_SUFFIX)
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def integrity_messages(con: sqlite3.Connection) -> tuple[str, ...]:
    """SQLite's integrity_check report: ("ok",) or up to MAX_MESSAGES problems."""
    rows = con.execute(f"PRAGMA integrity_check({MAX_MESSAGES})").fetchall()
    lines = [line for (row,) in rows for line in str(row).splitlines() if line.strip()]  # one row may hold many
    return tuple(lines[:MAX_MESSAGES])


def maintain_database(name: str, path: Path) -> DatabaseResult:
    """integrity_check, then (only if it passed) checkpoint, VACUUM, checkpoint; a missing file is left absent."""
    if not path.exists():
        return DatabaseResult(name, path, False, (), False, 0, 0)
    before = database_bytes(path)
    con = None
    try:
        con = connect_read_write(path)
        integrity = integrity_messages(con)
        if integrity != ("ok",):
            return DatabaseResult(name, path, True, integrity, False, before, database_bytes(path))
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("VACUUM")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as exc:
        if _contention(exc):  # a writer held the file past the busy timeout: no damage, so no integrity report
            raise
        return DatabaseResult(name, path, True, (f"{exc} ({_code(exc)})",), False, before, database_bytes(path))
    finally:
        if con is not None:
            con.close()
    return DatabaseResult(name, path, True, integrity, True, before, database_bytes(path))


def _code(exc: sqlite3.DatabaseError) -> str:
    """SQLite's name for the error (SQLITE_CORRUPT, SQLITE_NOTADB, ...)."""
    return getattr(exc, "sqlite_errorname", None) or type(exc).__name__


def _contention(exc: sqlite3.DatabaseError) -> bool:
    """True for busy/locked errors, which say another connection holds the file, not that it is damaged."""
    return _code(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
