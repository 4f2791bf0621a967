"""A folder given as a local path or an fsspec URL: a plain `Path` when it is local, else a `UPath`.

Local folders keep `pathlib` semantics (atomic renames, empty folders to tidy); a URL's object store
gets `universal_pathlib`'s file operations, which fsspec maps onto the store's API.
"""

from __future__ import annotations

from pathlib import Path

from upath import UPath

LOCAL_PROTOCOLS = frozenset({"", "file", "local"})  # universal_pathlib's protocols of the local filesystem


def location(root: str | Path) -> Path | UPath:
    """`root` as a `Path` when it names the local filesystem (a path, `file://`, `local://`), else as a `UPath`."""
    base = UPath(root)
    return Path(base.path) if base.protocol in LOCAL_PROTOCOLS else base
