"""Retention: the newest sessions' Parquet files; the champion's, the newest versions' and recent signals' models."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from upath import UPath

from turbomode_dagster.config import Maintenance
from turbomode_dagster.maintenance.retention import models_to_keep, prune_models, prune_partitions
from turbomode_dagster.maintenance.weekly import run_maintenance
from turbomode_dagster.storage.locations import location
from turbomode_dagster.storage.turbomode_db import CHALLENGER, CHAMPION, RETIRED, ModelRecord, TurboModeDB

SESSIONS = ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25"]


def version(n: int) -> str:
    return f"tm-{n:012x}"


def register(db: TurboModeDB, n: int, status: str, created: str) -> None:
    db.upsert_model(
        ModelRecord(
            model_version=version(n),
            created_at=created,
            status=status,
            data_fingerprint="f",
            feature_list=["rsi_14"],
            parameters={},
            metrics={},
            artifact_path=f"models/{version(n)}",
        )
    )


def signal(db: TurboModeDB, day: str, n: int) -> None:
    with db.writing() as con:
        con.execute(
            "INSERT INTO signals (symbol, as_of_date, target_date, signal, confidence, model_version) "
            "VALUES ('AAPL', ?, ?, 'BUY', 0.6, ?)",
            (day, day, version(n)),
        )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Six registered versions (the oldest is champion), signals by three of them, and an unregistered folder."""
    db = TurboModeDB.at_home(tmp_path)
    register(db, 1, CHAMPION, "2026-11-01T00:00:00+00:00")
    for n in range(2, 7):
        register(db, n, RETIRED if n < 4 else CHALLENGER, f"2026-11-{n + 10:02d}T00:00:00+00:00")
    for day, n in zip(SESSIONS, [2, 2, 3, 3, 5, 6], strict=True):
        signal(db, day, n)
    for n in range(1, 8):  # 7 was written by a training killed before it registered
        folder = tmp_path / "models" / version(n) / "base"
        folder.mkdir(parents=True)
        (folder / "xgb.json").write_bytes(b"m" * 100)
        (folder.parent / "manifest.json").write_text("{}")
    (tmp_path / "models" / "notes").mkdir()
    return tmp_path


def test_the_champion_the_newest_versions_and_recent_sessions_models_keep_their_artifacts(home: Path) -> None:
    keep = models_to_keep(TurboModeDB.at_home(home), keep_versions=2, keep_sessions=3)
    assert keep.champion == version(1)
    assert keep.newest == {version(5), version(6)}
    assert keep.recent_sessions == {version(3), version(5), version(6)}, "signals of 11-23, 11-24, 11-25"
    outcome = prune_models(home, keep)
    left = sorted(p.name for p in (home / "models").iterdir())
    assert left == sorted([version(1), version(3), version(5), version(6), "notes"])
    assert (outcome.files, outcome.bytes) == (3 * 2, 3 * (100 + 2)), "tm-2, tm-4 and the unregistered tm-7"
    assert {p.name for p in outcome.removed} == {version(2), version(4), version(7)}
    assert TurboModeDB.at_home(home).model(version(2)) is not None, "registry rows stay; only artifacts go"
    again = prune_models(home, models_to_keep(TurboModeDB.at_home(home), 2, 3))
    assert again.files == 0


def test_the_champion_is_kept_however_old_and_however_small_the_limits(home: Path) -> None:
    prune_models(home, models_to_keep(TurboModeDB.at_home(home), keep_versions=1, keep_sessions=1))
    assert (home / "models" / version(1) / "manifest.json").exists()
    assert sorted(p.name for p in (home / "models").iterdir() if p.name != "notes") == [version(1), version(6)]


@pytest.fixture(params=["local", "memory"])
def assets(request: pytest.FixtureRequest, tmp_path: Path) -> Path | UPath:
    """The per-night assets' folder on local disk, or at an fsspec URL (TURBOMODE_ASSETS_URL)."""
    if request.param == "local":
        return tmp_path / "assets"
    return location(f"memory://retention-{uuid.uuid4().hex}/assets")


def test_each_asset_keeps_its_newest_sessions_and_its_unpartitioned_file(assets: Path | UPath) -> None:
    for asset in ("feature_panel", "oof_predictions"):
        for day in SESSIONS:
            (assets / asset).mkdir(parents=True, exist_ok=True)
            (assets / asset / f"{day}.parquet").write_bytes(b"p" * 10)
    (assets / "feature_panel" / "all.parquet").write_bytes(b"a")
    outcome = prune_partitions(assets, keep_sessions=4)
    for asset in ("feature_panel", "oof_predictions"):
        assert sorted(p.name for p in (assets / asset).glob("2026-*.parquet")) == [f"{d}.parquet" for d in SESSIONS[2:]]
    assert (assets / "feature_panel" / "all.parquet").exists()
    assert (outcome.files, outcome.bytes) == (4, 40)
    assert prune_partitions(assets, keep_sessions=4).files == 0


def test_session_datasets_are_never_pruned(tmp_path: Path) -> None:
    """Month files of the session datasets, beside or inside assets/, survive any retention setting."""
    import pandas as pd

    from turbomode_dagster.storage.session_dataset import SessionDataset

    home = tmp_path / "home"
    frame = pd.DataFrame({"symbol": "AAA", "date": pd.to_datetime(SESSIONS), "x": 1.0})
    beside = SessionDataset(home / "datasets" / "feature_panel")
    beside.write(frame, SESSIONS)
    inside = SessionDataset(home / "assets" / "stray_dataset")
    inside.write(frame, SESSIONS)
    before = beside.files() + inside.files()
    assert prune_partitions(home / "assets", keep_sessions=1).files == 0
    assert all(p.exists() for p in before)


def test_weekly_maintenance_prunes_the_assets_where_turbomode_assets_url_puts_them(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"memory://weekly-{uuid.uuid4().hex}/assets"
    monkeypatch.setenv("TURBOMODE_ASSETS_URL", url)
    remote = location(url) / "oof_predictions"
    remote.mkdir(parents=True, exist_ok=True)
    for day in SESSIONS:
        (remote / f"{day}.parquet").write_bytes(b"p")
    now = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    report = run_maintenance(home, home / "market_data.db", None, Maintenance(keep_sessions=2), now)
    assert sorted(p.name for p in remote.iterdir()) == [f"{d}.parquet" for d in SESSIONS[-2:]]
    assert report.folders[0].files == 4
