"""Daily partitions that are exactly the NYSE sessions, in New York time."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from turbomode_dagster import calendar


def trading_days(start: dt.date) -> dg.TimeWindowPartitionsDefinition:
    """One partition per NYSE session from `start`; weekends and holidays are excluded.

    `end_offset=1` makes today's partition exist from midnight, so the 22:45 run can target the
    session that closed at 16:00 the same day.
    """
    horizon = calendar.nyse().last_session.date()
    excluded = [dt.datetime.combine(day, dt.time()) for day in calendar.holidays(start, horizon)]
    return dg.TimeWindowPartitionsDefinition(
        start=dt.datetime.combine(start, dt.time()),
        fmt="%Y-%m-%d",
        cron_schedule="0 0 * * 1-5",
        timezone=calendar.TIMEZONE,
        end_offset=1,
        exclusions=excluded,
    )
