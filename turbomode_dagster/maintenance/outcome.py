"""What one maintenance step did under one folder: files removed (or archived, then removed), bytes given back."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FolderOutcome:
    """Files a step removed under `folder`, their bytes, and the paths (for the run's log)."""

    step: str
    folder: Path
    files: int = 0
    bytes: int = 0
    removed: list[Path] = field(default_factory=list)

    def remove_file(self, path: Path) -> None:
        """Delete one file, count it, and remove the folders above it (up to `folder`) that it leaves empty."""
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # gone already: nothing reclaimed here
            return
        self._count(path, 1, size)

    def remove_tree(self, path: Path) -> None:
        """Delete a folder with everything in it, counting its files and bytes."""
        files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
        size = sum(p.stat().st_size for p in files)
        shutil.rmtree(path)
        self._count(path, len(files), size)

    def _count(self, path: Path, files: int, size: int) -> None:
        self.files += files
        self.bytes += size
        self.removed.append(path)
        _remove_empty_parents(path, self.folder)


def _remove_empty_parents(path: Path, stop: Path) -> None:
    """rmdir each parent of `path` below `stop` while it is empty (an object store has no empty folders)."""
    if not isinstance(path, Path):
        return
    parent = path.parent
    while parent != stop and stop in parent.parents:
        try:
            parent.rmdir()
        except OSError:  # not empty (or not ours to remove): stop climbing
            return
        parent = parent.parent
