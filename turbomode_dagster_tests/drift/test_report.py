"""drift_monitoring rows: most severe first, by the one severity measure the picture uses too."""

from __future__ import annotations

import pandas as pd
import pytest

from turbomode_dagster.drift.monitor import WINDOW_COLUMNS
from turbomode_dagster.drift.report import flag_reason, monitoring_rows, severity
from turbomode_dagster.drift.rule import Decision
from turbomode_dagster.drift.session import SessionDrift


def _row(column: str, status: str, psi: float, ks: float) -> dict:
    return {
        "column": column, "kind": "feature", "rows": 100, "psi": psi, "kl_divergence": 0.01, "ks_statistic": ks,
        "ks_pvalue": 0.5, "psi_threshold": 0.5, "kl_threshold": 0.1, "ks_threshold": 0.2,
        "exceeded": status != "ok", "status": status,
    }  # fmt: skip


def _result(rows: list[dict], reasons: list[str]) -> SessionDrift:
    table = pd.DataFrame(rows, columns=[*WINDOW_COLUMNS, "status"])
    return SessionDrift("2026-11-25", Decision(bool(reasons), reasons, table, 0.0), [table], {})


def test_rows_are_ordered_by_status_then_by_the_worst_statistic_over_its_level() -> None:
    result = _result(
        [
            _row("psi_mild", "warn", psi=0.6, ks=0.1),  # worst: PSI 1.2 x its level
            _row("ks_strong", "warn", psi=0.1, ks=0.5),  # worst: KS 2.5 x its level
            _row("calm", "ok", psi=0.01, ks=0.01),
            _row("alerting", "alert", psi=0.55, ks=0.1),
        ],
        ["rule A"],
    )
    rows = monitoring_rows(result, "tm-a")
    assert list(rows["feature"]) == ["alerting", "ks_strong", "psi_mild", "calm"]
    assert severity(rows).round(6).tolist() == pytest.approx([1.1, 2.5, 1.2, 0.1])
    assert set(rows["model_version"]) == {"tm-a"} and set(rows["as_of_date"]) == {"2026-11-25"}


def test_the_flag_reason_joins_every_rule_that_fired() -> None:
    assert flag_reason(_result([_row("a", "ok", 0.01, 0.01)], [])) is None
    assert flag_reason(_result([_row("a", "alert", 1.0, 0.5)], ["rule A", "rule B"])) == "rule A; rule B"
