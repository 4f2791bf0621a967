"""Where a catch-up run starts: the first session-keyed partition missing before the night's session.

Pure: the stored partitions come in as plain sets (read from the Dagster instance and the home by
`turbomode_dagster.orchestration.partitions`), so the rule is testable by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

from turbomode_dagster import calendar


def catch_up_start(stored: Iterable[Collection[str]], history_start: dt.date, day: str) -> str:
    """The first session from `history_start` before `day` that any of `stored` lacks, else `day` itself.

    `stored` holds, per session-keyed asset, the sessions it has; one run over [start, day] then leaves no
    session missing before `day` (a session in between that is present is rewritten, idempotently).
    """
    if not calendar.is_session(day):
        raise ValueError(f"{day} is not an NYSE session: no partition to catch up to")
    first = calendar.next_session(calendar.previous_session(history_start))
    if day <= first:
        return day
    sets = [set(partitions) for partitions in stored]
    for session in calendar.sessions(first, calendar.previous_session(day)):
        if any(session not in partitions for partitions in sets):
            return session
    return day


def sessions_of_labels(labels: Iterable[str]) -> set[str]:
    """The sessions named by ingestion-log labels: one session (`2026-11-25`) or a range (`A...B`)."""
    held: set[str] = set()
    for label in labels:
        first, _, last = label.partition("...")
        held.update(calendar.sessions(first, last or first))
    return held
