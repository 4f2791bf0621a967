"""Retention of per-night Parquet files and model artifacts; the session datasets are never touched.

Parquet: under `$TURBOMODE_HOME/assets/<asset>/`, the per-night files (`YYYY-MM-DD.parquet`: the
model's metrics and out-of-fold predictions) of the newest `keep_sessions` sessions are kept, older
ones removed; an unpartitioned `all.parquet` is always kept. Their one reader (the backtest reads
`oof_predictions`) reads its own session's file, so the newest sessions are all that reruns need.
The session datasets under `$TURBOMODE_HOME/datasets/` (adjusted prices, features, training samples,
one `YYYY-MM.parquet` per month) are the history itself: this module only ever lists `assets/`, and
even there a month file does not match SESSION_FILE.

Models: a version's artifact folder `$TURBOMODE_HOME/models/<version>/` is kept when it is the
champion in TurboMode.db's registry, one of the `keep_model_versions` newest registered versions, or
the model behind the signals of one of the newest `keep_sessions` scanned sessions; other registered
versions lose their artifacts (their registry rows, metrics and SHAP logs stay), and a folder no
registry row names (training killed between saving and registering) is removed. Training writes
artifacts in the same pool as maintenance, so no folder is removed while it is being written.
"""

from __future__ import annotations

import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from upath import UPath

from turbomode_dagster.maintenance.outcome import FolderOutcome
from turbomode_dagster.models.registry import MODELS_DIR, VERSION_HEX, VERSION_PREFIX
from turbomode_dagster.storage.turbomode_db import CHAMPION, TurboModeDB

SESSION_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.parquet$")
VERSION_FOLDER = re.compile(rf"^{re.escape(VERSION_PREFIX)}[0-9a-f]{{{VERSION_HEX}}}$")


@dataclass(frozen=True)
class ModelsToKeep:
    """The model versions whose artifacts stay, each set with its reason."""

    champion: str | None
    newest: frozenset[str]
    recent_sessions: frozenset[str]

    @property
    def kept(self) -> frozenset[str]:
        """Every version that keeps its artifacts."""
        return self.newest | self.recent_sessions | ({self.champion} if self.champion else frozenset())


def prune_partitions(assets_dir: Path | UPath, keep_sessions: int) -> FolderOutcome:
    """Remove each asset's session files beyond its newest `keep_sessions`, under a local folder or a URL."""
    outcome = FolderOutcome("parquet partitions", assets_dir)
    if not assets_dir.is_dir():
        return outcome
    folders = sorted({p.parent for p in assets_dir.rglob("*.parquet") if SESSION_FILE.match(p.name)})
    for folder in folders:
        sessions = sorted(p for p in folder.iterdir() if p.is_file() and SESSION_FILE.match(p.name))
        for path in sessions[:-keep_sessions]:
            outcome.remove_file(path)
    return outcome


def models_to_keep(db: TurboModeDB, keep_versions: int, keep_sessions: int) -> ModelsToKeep:
    """Read the registry and the scanned sessions (read-only) to decide which versions keep their artifacts."""
    with closing(db.connect_read_only()) as con:
        registry = con.execute("SELECT model_version, status FROM model_registry ORDER BY created_at, model_version")
        rows = registry.fetchall()
        recent = con.execute(
            "SELECT DISTINCT model_version FROM signals WHERE as_of_date IN "
            "(SELECT DISTINCT as_of_date FROM signals ORDER BY as_of_date DESC LIMIT ?)",
            (keep_sessions,),
        ).fetchall()
    champion = next((version for version, status in rows if status == CHAMPION), None)
    return ModelsToKeep(
        champion=champion,
        newest=frozenset(version for version, _ in rows[-keep_versions:]),
        recent_sessions=frozenset(version for (version,) in recent),
    )


def prune_models(home: Path, keep: ModelsToKeep) -> FolderOutcome:
    """Remove the artifact folders of versions not in `keep.kept` (unregistered folders included)."""
    models_dir = home / MODELS_DIR
    outcome = FolderOutcome("model artifacts", models_dir)
    if not models_dir.is_dir():
        return outcome
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        if VERSION_FOLDER.match(folder.name) and folder.name not in keep.kept:
            outcome.remove_tree(folder)
    return outcome
