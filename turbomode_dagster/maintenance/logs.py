"""Log archiving: logs older than `maintenance.log_retention_days` -> one verified .tar.gz under archive/.

Two kinds of log are covered: the platform's own log files under `$TURBOMODE_HOME/logs/` (where
`dagster dev` and the daemon's output belong: `dagster dev > $TURBOMODE_HOME/logs/dagster.log`), and
the step logs Dagster captures for every run under the instance's storage folder
(`$DAGSTER_HOME/storage/<run_id>/compute_logs/`). Each maintenance run that finds old logs writes
`archive/logs-<UTC time>.tar.gz` atomically, reads it back and compares every member's sha256 with the
original's; only then, and only for originals unchanged since they were read, are they removed. A run
that finds none writes nothing, so a second run in a row archives and removes nothing. Archives
themselves are kept for `maintenance.archive_retention_days` when that is set, forever otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from turbomode_dagster.maintenance.outcome import FolderOutcome
from turbomode_dagster.storage.atomic import atomic_write

ARCHIVE_DIR = "archive"
PLATFORM_LOGS_DIR = "logs"
COMPUTE_LOGS_DIR = "compute_logs"


@dataclass(frozen=True)
class LogFile:
    """One log picked for the archive, as it was when it was read."""

    path: Path
    member: str
    sha256: str
    size: int
    mtime_ns: int


@dataclass
class ArchiveResult:
    """The archive written (None when no log was old enough) and, per log source, what it took."""

    archive: Path | None = None
    archive_bytes: int = 0
    sources: dict[str, FolderOutcome] = field(default_factory=dict)

    @property
    def files(self) -> int:
        """Logs archived and removed."""
        return sum(outcome.files for outcome in self.sources.values())


class ArchiveNotVerified(RuntimeError):
    """The archive read back does not hold the logs' bytes; the originals were kept."""


def platform_logs(home: Path) -> Path:
    """Where the platform's own log files live."""
    return home / PLATFORM_LOGS_DIR


def compute_log_files(storage: Path) -> list[Path]:
    """Dagster's captured step logs: every file under `<storage>/<run_id>/compute_logs/`."""
    return sorted(p for p in storage.glob(f"*/{COMPUTE_LOGS_DIR}/**/*") if _plain_file(p))


def old_logs(folder: Path, files: list[Path], cutoff: float, prefix: str) -> list[LogFile]:
    """The files last modified before `cutoff` (epoch seconds), read and hashed, named `prefix/<relative path>`."""
    picked = []
    for path in files:
        stat = path.stat()
        if stat.st_mtime < cutoff:
            data = path.read_bytes()
            member = f"{prefix}/{path.relative_to(folder).as_posix()}"
            picked.append(LogFile(path, member, hashlib.sha256(data).hexdigest(), len(data), stat.st_mtime_ns))
    return picked


def archive_logs(
    archive_dir: Path, sources: Mapping[str, tuple[Path, list[Path]]], cutoff: float, now: dt.datetime
) -> ArchiveResult:
    """Archive, verify, then remove the logs older than `cutoff` from each source {name: (folder, files)}."""
    picked = {name: old_logs(folder, files, cutoff, name) for name, (folder, files) in sources.items()}
    result = ArchiveResult(
        sources={name: FolderOutcome(f"logs {name}", folder) for name, (folder, _) in sources.items()}
    )
    logs = [log for group in picked.values() for log in group]
    if not logs:
        return result
    target = _archive_path(archive_dir, now)
    atomic_write(target, lambda path: _write_archive(path, logs))
    _verify(target, logs)
    result.archive, result.archive_bytes = target, target.stat().st_size
    for name, group in picked.items():
        for log in group:
            stat = log.path.stat()
            if stat.st_mtime_ns == log.mtime_ns and stat.st_size == log.size:  # not written to since it was read
                result.sources[name].remove_file(log.path)
    return result


def prune_archives(archive_dir: Path, cutoff: float) -> FolderOutcome:
    """Remove the archives (`logs-*.tar.gz`) last modified before `cutoff` (epoch seconds)."""
    outcome = FolderOutcome("log archives", archive_dir)
    if archive_dir.is_dir():
        for path in sorted(archive_dir.glob("logs-*.tar.gz")):
            if _plain_file(path) and path.stat().st_mtime < cutoff:
                outcome.remove_file(path)
    return outcome


def _archive_path(archive_dir: Path, now: dt.datetime) -> Path:
    """archive/logs-<UTC time>.tar.gz, with a counter if a run in the same second wrote one already."""
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target, counter = archive_dir / f"logs-{stamp}.tar.gz", 1
    while target.exists():
        counter += 1
        target = archive_dir / f"logs-{stamp}-{counter}.tar.gz"
    return target


def _write_archive(path: Path, logs: list[LogFile]) -> None:
    """A gzip'd tar holding each log's bytes (as hashed when picked) under its member name and mtime."""
    with tarfile.open(path, "w:gz") as tar:
        for log in logs:
            data = log.path.read_bytes()
            if hashlib.sha256(data).hexdigest() != log.sha256:
                raise ArchiveNotVerified(f"{log.path} changed while it was being archived; nothing was removed")
            info = tarfile.TarInfo(log.member)
            info.size, info.mtime = len(data), log.mtime_ns / 1e9
            tar.addfile(info, io.BytesIO(data))


def _verify(path: Path, logs: list[LogFile]) -> None:
    """Read the archive back: every log must be there with the same sha256, or nothing is removed."""
    expected = {log.member: log.sha256 for log in logs}
    found = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                found[member.name] = hashlib.sha256(handle.read()).hexdigest()
    wrong = sorted(name for name, digest in expected.items() if found.get(name) != digest)
    if wrong:
        raise ArchiveNotVerified(f"{path} does not hold the bytes of {wrong[:5]}; the originals were kept")


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def platform_log_files(home: Path) -> list[Path]:
    """Every regular file under the platform's log folder."""
    folder = platform_logs(home)
    return sorted(p for p in folder.rglob("*") if _plain_file(p)) if folder.is_dir() else []
