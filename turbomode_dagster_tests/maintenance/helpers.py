"""Small on-disk fixtures for maintenance tests: a database with dead rows, a damaged copy, aged files."""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import closing
from pathlib import Path

from turbomode_dagster.storage.sqlite import connect_read_write

PAGE = 4096


def database_with_dead_rows(path: Path, rows: int = 20_000, keep: int = 100) -> Path:
    """A WAL database that held `rows` rows, all but `keep` deleted: free pages for VACUUM to reclaim."""
    with closing(connect_read_write(path)) as con:
        con.execute("CREATE TABLE bars (symbol TEXT, date TEXT, close REAL, PRIMARY KEY (symbol, date))")
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO bars VALUES (?, ?, ?)", ((f"S{i % 97}", f"d{i:08d}", i * 0.5) for i in range(rows))
        )
        con.execute("DELETE FROM bars WHERE rowid > ?", (keep,))
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def damaged_copy(source: Path, target: Path, whole_page: bool = False) -> Path:
    """A copy of `source` with one b-tree page in the middle damaged: its cell area zeroed, or all of it garbage."""
    shutil.copyfile(source, target)
    pages = target.stat().st_size // PAGE
    assert pages > 4, "the source needs a few pages to damage one"
    with target.open("r+b") as handle:
        if whole_page:
            handle.seek((pages // 4) * PAGE)
            handle.write(b"\xa5" * PAGE)
        else:
            handle.seek((pages // 4) * PAGE + 3000)
            handle.write(b"\x00" * 1000)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_aged(path: Path, data: bytes, age_seconds: float, now: float) -> Path:
    """Write `data` to `path` and set its modification time `age_seconds` before `now`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (now - age_seconds, now - age_seconds))
    return path
