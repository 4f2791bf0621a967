"""Only ingestion can open the Master DB read-write: by wiring, and caught at sqlite3.connect if anyone tries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import adbc_driver_sqlite.dbapi
import dagster as dg
import pytest

from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.storage.market_db import MarketDBWriter, market_db_path
from turbomode_dagster.storage.sqlite import connect_read_write
from turbomode_dagster_tests.master_db_guard import MasterDBWriteRefused, master_db_untouched

# Assets that may write the Master DB: ingestion, and weekly maintenance (integrity_check, VACUUM).
WRITERS = {"market_data", "weekly_maintenance"}


def test_only_ingestion_and_maintenance_are_wired_to_the_write_access_resource(small_settings) -> None:
    defs = build_definitions(small_settings)
    holders = {
        assets_def.node_def.name
        for assets_def in defs.resolve_asset_graph().assets_defs
        if assets_def.is_executable and "master_db" in assets_def.required_resource_keys
    }
    assert holders == WRITERS
    assert not hasattr(TurboModeHome, "market_writer"), "the home resource must not hand out writers"


def _seeded_master_db(home: Path) -> Path:
    writer = MarketDBWriter(market_db_path(home))
    writer.close()
    return market_db_path(home)


@pytest.mark.parametrize(
    "rogue",
    [
        lambda path: MarketDBWriter(path),
        lambda path: connect_read_write(path),
        lambda path: sqlite3.connect(path),
        lambda path: sqlite3.connect(str(path), isolation_level=None),
        lambda path: sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True),
        lambda path: __import__("sqlite3").dbapi2.connect(str(path)),
    ],
    ids=["MarketDBWriter", "connect_read_write", "sqlite3.connect", "str path", "mode=rw URI", "dbapi2.connect"],
)
def test_the_guard_catches_a_non_ingestion_asset_opening_a_writer_directly(home: Path, rogue) -> None:
    """The guard the asset tests rely on must fail a rogue asset, whichever way it opens the file."""
    db = _seeded_master_db(home)

    @dg.asset
    def rogue_report() -> None:
        rogue(db).close()

    with pytest.raises(AssertionError, match="read-write opens of the Master DB"):  # noqa: SIM117
        with master_db_untouched(db):
            result = dg.materialize([rogue_report], raise_on_error=False)
            assert not result.success
            (failure,) = [e for e in result.all_events if e.is_step_failure]
            assert MasterDBWriteRefused.__name__ in str(failure.event_specific_data.error.cause)


def test_the_guard_catches_a_writer_the_audit_hook_cannot_see(home: Path) -> None:
    """ADBC opens SQLite in C (no sqlite3.connect audit event): a write through it is caught by the bytes."""
    db = _seeded_master_db(home)

    @dg.asset
    def rogue_report() -> None:
        with adbc_driver_sqlite.dbapi.connect(db.resolve().as_uri()) as con, con.cursor() as cursor:
            cursor.execute("CREATE TABLE rogue (x INTEGER)")
            con.commit()

    with pytest.raises(AssertionError, match="changed"), master_db_untouched(db):
        assert dg.materialize([rogue_report]).success


def test_the_guard_catches_a_change_to_the_bytes(home: Path) -> None:
    db = _seeded_master_db(home)
    with pytest.raises(AssertionError, match="changed"), master_db_untouched(db), db.open("ab") as raw:
        raw.write(b"\0")


def test_the_guard_lets_read_only_handles_through(home: Path) -> None:
    db = _seeded_master_db(home)
    with master_db_untouched(db):
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        assert con.execute("SELECT COUNT(*) FROM daily_bars").fetchone() == (0,)
        con.close()
