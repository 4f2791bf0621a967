"""Atomic file replacement: readers see the old file or the new one, never half of either.

Locally the new content is written to a hidden sibling with the same suffix (libraries such as XGBoost
pick the format from it), flushed to disk, renamed over the target, and the folder's entry is synced; a
failure on the way removes the sibling and leaves the target as it was. On an fsspec store (a `UPath`)
it is written to a local temporary file and uploaded in one `put`: an object store replaces an object
whole, so it never holds part of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from upath import UPath


def atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """Call `write(path)` on a temporary sibling of `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        write(temporary)
        _fsync(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync(target.parent)


def replace_file(target: Path | UPath, write: Callable[[Path], object]) -> int:
    """Replace `target` with what `write(path)` writes to a local path, whole or not at all; its size in bytes.
    A local `target` (a plain `Path`) goes through `atomic_write`, a `UPath` through one upload."""
    if isinstance(target, Path):
        atomic_write(target, write)
        return target.stat().st_size
    with tempfile.TemporaryDirectory(prefix="turbomode-upload-") as folder:
        staging = Path(folder) / target.name
        write(staging)
        target.fs.put_file(str(staging), target.path)
        return staging.stat().st_size


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's) data to disk; folders cannot be opened for sync on every system."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    with contextlib.suppress(OSError):
        descriptor = os.open(path, flags)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
