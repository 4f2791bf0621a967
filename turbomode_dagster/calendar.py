"""The NYSE trading calendar (exchange_calendars' XNYS): sessions, holidays and the next session.

One place answers "is this a trading day?" so sources, validation, partitions and schedules agree.
exchange_calendars is maintained against the exchanges' published holiday rules, which beats a
hand-kept holiday list.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd

EXCHANGE = "XNYS"
TIMEZONE = "America/New_York"
CALENDAR_START = "1990-01-02"
# A fixed horizon, not "today + n years": the calendar, and so the partitions' holiday exclusions,
# must be the same whichever day the code location is loaded.
CALENDAR_END = "2040-12-31"


@lru_cache(maxsize=1)
def nyse() -> xcals.ExchangeCalendar:
    """The XNYS calendar from 1990 to a fixed horizon, so future partitions exist and never change."""
    return xcals.get_calendar(EXCHANGE, start=CALENDAR_START, end=CALENDAR_END)


def as_date(value: str | dt.date | pd.Timestamp) -> dt.date:
    """Coerce an ISO string, date or timestamp to a date; a bad string raises naming it."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"not a date in YYYY-MM-DD form: {value!r}") from exc


def is_session(day: str | dt.date) -> bool:
    """True when the NYSE is open on `day`."""
    return nyse().is_session(pd.Timestamp(as_date(day)))


def sessions(start: str | dt.date, end: str | dt.date) -> list[str]:
    """NYSE sessions from `start` to `end` inclusive, as ISO strings."""
    first, last = as_date(start), as_date(end)
    if last < first:
        return []
    cal = nyse()
    first = max(first, cal.first_session.date())
    last = min(last, cal.last_session.date())
    return [d.strftime("%Y-%m-%d") for d in cal.sessions_in_range(first, last)]


def next_session(day: str | dt.date) -> str:
    """The first NYSE session strictly after `day` (the scan of 2026-11-25 targets 2026-11-27)."""
    return nyse().date_to_session(pd.Timestamp(as_date(day)) + pd.Timedelta(days=1), "next").strftime("%Y-%m-%d")


def previous_session(day: str | dt.date) -> str:
    """The last NYSE session strictly before `day`."""
    return nyse().date_to_session(pd.Timestamp(as_date(day)) - pd.Timedelta(days=1), "previous").strftime("%Y-%m-%d")


def latest_completed_session(now: dt.datetime) -> str:
    """The latest session whose close has passed at `now` (timezone-aware)."""
    return nyse().minute_to_past_session(pd.Timestamp(now).tz_convert("UTC")).strftime("%Y-%m-%d")


def holidays(start: str | dt.date, end: str | dt.date) -> list[dt.date]:
    """Weekdays between `start` and `end` on which the NYSE is closed."""
    weekdays = pd.bdate_range(as_date(start), as_date(end))
    open_days = set(sessions(start, end))
    return [d.date() for d in weekdays if d.strftime("%Y-%m-%d") not in open_days]
