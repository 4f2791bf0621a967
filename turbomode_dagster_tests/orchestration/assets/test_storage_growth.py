"""Storage growth: the second night adds one session's files, never a rewrite of the history (issue 12).

Two consecutive nights on the six-symbol sample home of the training tests: the first loads the
history and trains, the second runs every asset for the next session. What the second night writes
under the home is grouped by folder and held to what one session should cost: each dataset its month
file, each per-night asset one partition file, the databases a bound on one session's rows.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from turbomode_dagster.config import load_settings
from turbomode_dagster.storage.session_dataset import RECORD_FILE, SessionDataset
from turbomode_dagster_tests.conftest import write_config
from turbomode_dagster_tests.orchestration.assets.backfill import DATASET_ASSETS, first_night
from turbomode_dagster_tests.orchestration.assets.test_models_and_scanner import (
    DAY,
    NEXT_SESSION,
    PATCHES,
    all_assets,
    resources,
)

DATABASES = ("market_data.db", "turbomode.db")
# Measured on this home: market_data.db + 4 KiB (one session of six symbols' bars and actions, whole
# pages); turbomode.db + 476 KiB (a new model version's drift baseline, SHAP log, metrics, predictions).
DATABASE_BOUNDS = {"market_data.db": 64 * 1024, "turbomode.db": 1024 * 1024}


def files(home: Path) -> dict[Path, tuple[int, int]]:
    """Every file under `home` with size and modification time, but SQLite's fixed-size -shm index."""
    kept = (p for p in home.rglob("*") if p.is_file() and not p.name.endswith("-shm"))
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in kept}


def folder(home: Path, path: Path) -> str:
    """The group a file counts under: `datasets/<name>`, `assets/<name>`, a database (with WAL), or top folder."""
    parts = path.relative_to(home).parts
    if parts[0] in ("datasets", "assets"):
        return "/".join(parts[:2])
    return next((db for db in DATABASES if parts[0].startswith(db)), parts[0])


def written(home: Path, before: dict[Path, tuple[int, int]]) -> dict[str, dict[str, int]]:
    """Per folder: the files created or rewritten since `before`, relative path to size."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for path, (size, stamp) in files(home).items():
        if before.get(path) != (size, stamp):
            out[folder(home, path)][str(path.relative_to(home))] = size
    return out


def grown(home: Path, before: dict[Path, tuple[int, int]], name: str) -> int:
    """Bytes a database (file plus WAL) grew by since `before`."""
    now = files(home)
    return sum(now.get(p, (0, 0))[0] - before.get(p, (0, 0))[0] for p in {*now, *before} if p.name.startswith(name))


@pytest.fixture(scope="module")
def second_night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict[str, dict[str, int]]]:
    """The home after two nights, the file snapshot before the second, and what the second wrote."""
    root = tmp_path_factory.mktemp("growth")
    home = root / "home"
    home.mkdir()
    config = write_config(root / "config.json", PATCHES)
    assets = all_assets(load_settings(config))
    first_night(assets, resources(home, config), PATCHES["history.start_date"], DAY)
    before = files(home)
    first_night(assets, resources(home, config), NEXT_SESSION, NEXT_SESSION)
    return home, before, written(home, before)


def test_each_dataset_rewrites_only_its_month_file_and_session_record(second_night) -> None:
    home, _, wrote = second_night
    month = f"{NEXT_SESSION[:7]}.parquet"
    for name in DATASET_ASSETS:
        assert set(wrote[f"datasets/{name}"]) == {f"datasets/{name}/{month}", f"datasets/{name}/{RECORD_FILE}"}, name
        history = SessionDataset(home / "datasets" / name).bytes()
        assert sum(wrote[f"datasets/{name}"].values()) < history / 5, (name, history)


def test_each_per_night_asset_adds_one_partition_file(second_night) -> None:
    home, before, wrote = second_night
    assets = {group: paths for group, paths in wrote.items() if group.startswith("assets/")}
    assert assets, "the second night stored no per-night asset"
    for group, paths in assets.items():
        assert list(paths) == [f"{group}/{NEXT_SESSION}.parquet"], group
        assert (home / group / f"{NEXT_SESSION}.parquet") not in before


def test_databases_grow_by_one_session_not_the_history(second_night) -> None:
    home, before, wrote = second_night
    for name, bound in DATABASE_BOUNDS.items():
        assert grown(home, before, name) <= bound, (name, grown(home, before, name))
    unexpected = set(wrote) - {*DATABASES, "models", "dagster_home"} - {g for g in wrote if "/" in g}
    assert not unexpected, unexpected
