"""A test guard that fails when anything opens the Master DB for writing or changes its bytes.

It sits at the lowest level there is: Python's `sqlite3.connect` audit event, raised by the C module
for every connection whatever the import path, so a writer opened through `MarketDBWriter`,
`connect_read_write`, `sqlite3.connect` or `from sqlite3 import connect` is refused alike; and a
sha256 of the database and its WAL before and after, for writers that bypass sqlite3 altogether. The
columnar read path is one: ADBC opens SQLite in C, where no audit event is raised, so for it the bytes
are the proof (and `storage/test_columnar.py` shows a write through its own connection fails).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

_GUARDED: list[Path] = []
_REFUSED: list[str] = []


class MasterDBWriteRefused(PermissionError):
    """Something opened the guarded Master DB without a read-only URI."""


def _target(database: object) -> tuple[Path | None, bool]:
    """(resolved file, opened read-only?) for what sqlite3.connect was asked to open."""
    text = database.decode() if isinstance(database, bytes) else str(database)
    if text.startswith("file:"):
        parsed = urlparse(text)
        read_only = parse_qs(parsed.query).get("mode", [""])[0] == "ro"
        return Path(unquote(parsed.path)).resolve(), read_only
    if text in ("", ":memory:"):
        return None, False
    return Path(text).resolve(), False


def _audit(event: str, args: tuple) -> None:
    if event != "sqlite3.connect" or not _GUARDED:
        return
    path, read_only = _target(args[0])
    if path is not None and not read_only and path in _GUARDED:
        _REFUSED.append(str(path))
        raise MasterDBWriteRefused(f"opened the Master DB {path} read-write outside ingestion")


sys.addaudithook(_audit)


def fingerprint(db: Path) -> dict[str, str]:
    """sha256 of the database file and its WAL (the -shm index is shared memory, not data).

    An empty WAL counts as none: a read-only handle may create one, and it holds no data.
    """
    files = [db, db.with_name(db.name + "-wal")]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists() and f.stat().st_size}


@contextmanager
def master_db_untouched(db: Path) -> Iterator[list[str]]:
    """Refuse read-write opens of `db` inside the block; on exit, assert none was tried and its bytes held.

    Yields the list of refused opens, so a test of the guard itself can inspect it.
    """
    path = db.resolve()
    before = fingerprint(path)
    refused_before = len(_REFUSED)
    _GUARDED.append(path)
    try:
        yield _REFUSED
    finally:
        _GUARDED.remove(path)
    tried = _REFUSED[refused_before:]
    assert not tried, f"read-write opens of the Master DB: {tried}"
    assert fingerprint(path) == before, f"the Master DB {path} changed"
