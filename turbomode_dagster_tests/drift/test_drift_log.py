"""The drift tables: a session's rows replaced whole, one flag per session and version, flags resolved."""

from __future__ import annotations

import pandas as pd
import pytest

from turbomode_dagster.storage.drift_log import MONITORING_COLUMNS, DriftLog, flag_id
from turbomode_dagster.storage.turbomode_db import TurboModeDB
from turbomode_dagster_tests.conftest import dump_tables


def rows(day: str, version: str = "tm-a", psi: float = 0.05) -> pd.DataFrame:
    base = dict.fromkeys(MONITORING_COLUMNS)
    base.update(as_of_date=day, model_version=version, kind="feature", rows=830, kl_divergence=0.02)
    base.update(ks_statistic=0.04, ks_pvalue=0.3, threshold=0.25, kl_threshold=0.125, ks_threshold=0.1)
    return pd.DataFrame(
        [
            {**base, "feature": "rsi_14", "psi": psi, "status": "ok"},
            {**base, "feature": "ret_1d", "psi": 0.4, "status": "alert"},
        ]
    )


@pytest.fixture
def log(tmp_path) -> DriftLog:
    return DriftLog(TurboModeDB.at_home(tmp_path))


def test_rerunning_a_session_changes_nothing(log: DriftLog) -> None:
    log.replace_session("2026-11-24", rows("2026-11-24"), None)
    first = log.replace_session("2026-11-25", rows("2026-11-25"), "40% of features on alert")
    before = dump_tables(log.db.path)
    again = log.replace_session("2026-11-25", rows("2026-11-25"), "40% of features on alert")
    assert dump_tables(log.db.path) == before
    assert first == again and first.flag_id == flag_id("2026-11-25", "tm-a") and first.status == "open"


def test_a_rerun_replaces_the_sessions_rows_and_no_second_flag_is_raised(log: DriftLog) -> None:
    log.replace_session("2026-11-25", rows("2026-11-25", psi=0.05), "rule A")
    log.replace_session("2026-11-25", rows("2026-11-25", psi=0.07), "rule A, with other numbers")
    stored = log.db.read_table("drift_monitoring")
    assert len(stored) == 2 and stored.set_index("feature").loc["rsi_14", "psi"] == 0.07
    flags = log.db.read_table("retrain_flags")
    assert len(flags) == 1 and flags["reason"].iloc[0] == "rule A", "the first raising keeps its reason"


def test_a_session_that_no_longer_flags_withdraws_its_open_flag(log: DriftLog) -> None:
    log.replace_session("2026-11-25", rows("2026-11-25"), "rule A")
    assert log.replace_session("2026-11-25", rows("2026-11-25"), None) is None
    assert log.db.read_table("retrain_flags").empty


def test_training_a_new_version_resolves_open_flags_and_they_stay_resolved(log: DriftLog) -> None:
    log.replace_session("2026-11-24", rows("2026-11-24"), "rule A")
    log.replace_session("2026-11-25", rows("2026-11-25"), "rule B")
    assert [f.as_of_date for f in log.open_flags()] == ["2026-11-24", "2026-11-25"]
    assert log.resolve_flags("tm-a") == [], "retraining to the same version resolves nothing"
    assert sorted(log.resolve_flags("tm-b")) == [flag_id("2026-11-24", "tm-a"), flag_id("2026-11-25", "tm-a")]
    assert log.open_flags() == []
    again = log.replace_session("2026-11-25", rows("2026-11-25"), "rule B")
    assert (again.status, again.resolved_by) == ("resolved", "tm-b")
    assert log.open_flags() == []


def test_one_sessions_rows_are_for_one_model_version(log: DriftLog) -> None:
    mixed = pd.concat([rows("2026-11-25", "tm-a"), rows("2026-11-25", "tm-b")])
    with pytest.raises(ValueError, match="one model version"):
        log.replace_session("2026-11-25", mixed, None)


def test_baselines_are_kept_per_version(log: DriftLog) -> None:
    assert log.baseline("tm-a") is None
    con = log.db.connect_read_write()
    con.execute("INSERT INTO model_registry VALUES ('tm-a', 't', 'champion', 'f', '[]', '{}', '{}', '/tmp', NULL)")
    con.close()
    log.store_baseline("tm-a", '{"x": 1}')
    log.store_baseline("tm-a", '{"x": 1}')
    assert log.baseline("tm-a") == '{"x": 1}'
