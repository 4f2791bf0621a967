"""Temp cleanup: atomic-write temporaries left by killed writers, and the configured scratch folders.

`storage.atomic.atomic_write` stages each Parquet partition and model artifact in a hidden sibling
`.tmp-<pid>-<name>` and renames it into place; a writer killed before the rename leaves that sibling
behind. One is removed when its writer's process is gone, or when it is older than
`maintenance.temp_max_age_hours` (the pid may have been reused); one whose writer still runs and is
younger is kept, since it may be mid-write. Files in `maintenance.temp_folders` (folders under
TURBOMODE_HOME for scratch: downloads, exports) are removed once older than the same age, and so is a
run's folder under `steps/` (fits one step handed the next, left by a run that did not finish).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import psutil

from turbomode_dagster.maintenance.outcome import FolderOutcome

ATOMIC_TEMPORARY = re.compile(r"^\.tmp-(\d+)-.+")
# Folders of TURBOMODE_HOME that hold the platform's own data: never a scratch folder.
RESERVED_FOLDERS = frozenset({"assets", "datasets", "models", "archive", "logs", "dagster_home", "csv"})


def temp_folder_problem(folder: str) -> str | None:
    """Why `folder` cannot be a scratch folder under TURBOMODE_HOME, or None when it can."""
    parts = PurePosixPath(folder).parts
    if not folder or "\x00" in folder or "\\" in folder or len(folder) > 255:
        return f"{folder!r} is not a folder name (1..255 characters, '/' separated, no NUL or backslash)"
    if PurePosixPath(folder).is_absolute() or ".." in parts:
        return f"{folder!r} must be a folder inside TURBOMODE_HOME (relative, without '..')"
    if not parts or parts[0] in RESERVED_FOLDERS or parts[0].endswith(".db"):
        return f"{folder!r} holds the platform's own data ({', '.join(sorted(RESERVED_FOLDERS))}, the databases)"
    return None


def clean_atomic_temporaries(home: Path, now: float, max_age_seconds: float) -> FolderOutcome:
    """Remove every `.tmp-<pid>-*` under `home` whose writer is gone or that is older than `max_age_seconds`."""
    outcome = FolderOutcome("atomic-write temporaries", home)
    for path in sorted(home.rglob(".tmp-*")):
        match = ATOMIC_TEMPORARY.match(path.name)
        if not match or not path.is_file() or path.is_symlink():
            continue
        age = now - path.stat().st_mtime
        if age > max_age_seconds or not _running(int(match.group(1))):
            outcome.remove_file(path)
    return outcome


def clean_temp_folders(home: Path, folders: Sequence[str], now: float, max_age_seconds: float) -> list[FolderOutcome]:
    """Remove files older than `max_age_seconds` from each scratch folder (the folder itself is kept)."""
    outcomes = []
    for name in folders:
        folder = home / name
        outcome = FolderOutcome(f"temp folder {name}", folder)
        if folder.is_dir() and not folder.is_symlink():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime > max_age_seconds:
                    outcome.remove_file(path)
        outcomes.append(outcome)
    return outcomes


def clean_step_outputs(steps: Path, now: float, max_age_seconds: float) -> FolderOutcome:
    """Remove each run's folder under `steps` whose newest file is older than `max_age_seconds`.

    A run that publishes removes its own folder; one that failed leaves it for a re-execution from the
    failure, which is done well within the age, or never.
    """
    outcome = FolderOutcome("handed-on step outputs", steps)
    if not steps.is_dir() or steps.is_symlink():
        return outcome
    for run in sorted(p for p in steps.iterdir() if p.is_dir() and not p.is_symlink()):
        stamps = [p.stat().st_mtime for p in run.rglob("*") if p.is_file()] or [run.stat().st_mtime]
        if now - max(stamps) > max_age_seconds:
            outcome.remove_tree(run)
    return outcome


def _running(pid: int) -> bool:
    """True when a process with this id exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
