"""The completeness rule over a range of sessions, by hand."""

from __future__ import annotations

import pandas as pd

from turbomode_dagster.ingestion.checks import worst_session

SESSIONS = ["2026-11-23", "2026-11-24", "2026-11-25"]


def closes(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame([(s, d, 1.0) for s, d in rows], columns=["symbol", "date", "close"])


def test_the_worst_session_is_the_one_with_fewest_symbols() -> None:
    stored = closes([(s, d) for d in SESSIONS for s in "ABCD"])
    stored = stored[~((stored["date"] == "2026-11-24") & stored["symbol"].isin(["B", "C"]))]
    assert worst_session(stored, list("ABCD"), SESSIONS, 0.95) == ("2026-11-24", 0.5, ["B", "C"], 1)


def test_a_session_with_no_bar_at_all_counts_and_other_symbols_do_not() -> None:
    stored = closes([(s, d) for d in ("2026-11-23", "2026-11-25") for s in "AB"] + [("ZZZ", "2026-11-24")])
    assert worst_session(stored, ["A", "B"], SESSIONS, 0.95) == ("2026-11-24", 0.0, ["A", "B"], 1)
    # Bars outside the range are not judged; among equals the latest session is reported.
    assert worst_session(closes([("A", "2026-11-20")]), ["A"], SESSIONS, 0.95) == ("2026-11-25", 0.0, ["A"], 3)
