"""The NYSE calendar and the trading-day partitions built on it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.orchestration.partitions import trading_days

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        ("2026-11-25", True),  # Wednesday
        ("2026-11-26", False),  # Thanksgiving
        ("2026-11-27", True),  # half day after Thanksgiving
        ("2026-11-28", False),  # Saturday
        ("2026-11-29", False),  # Sunday
        ("2026-12-25", False),  # Christmas
        ("2026-07-03", False),  # Independence Day observed (July 4 is a Saturday)
    ],
)
def test_is_session(day: str, open_: bool) -> None:
    assert calendar.is_session(day) is open_
    assert calendar.is_session(dt.date.fromisoformat(day)) is open_


def test_next_and_previous_session_skip_holidays_and_weekends() -> None:
    assert calendar.next_session("2026-11-25") == "2026-11-27"
    assert calendar.next_session("2026-11-27") == "2026-11-30"
    assert calendar.previous_session("2026-11-27") == "2026-11-25"
    assert calendar.previous_session("2026-11-30") == "2026-11-27"
    assert calendar.next_session("2026-11-26") == "2026-11-27"


def test_sessions_are_inclusive_iso_strings() -> None:
    assert calendar.sessions("2026-11-20", "2026-11-30") == [
        "2026-11-20",
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
        "2026-11-27",
        "2026-11-30",
    ]
    assert calendar.sessions("2026-11-30", "2026-11-20") == []
    assert calendar.sessions("2026-11-26", "2026-11-26") == []


def test_holidays_are_weekdays_without_a_session() -> None:
    assert calendar.holidays("2026-11-01", "2026-12-31") == [dt.date(2026, 11, 26), dt.date(2026, 12, 25)]


def test_as_date_accepts_dates_timestamps_and_iso_strings() -> None:
    expected = dt.date(2026, 11, 25)
    assert calendar.as_date("2026-11-25") == expected
    assert calendar.as_date(expected) == expected
    assert calendar.as_date(dt.datetime(2026, 11, 25, 22, 45)) == expected
    assert calendar.as_date(pd.Timestamp("2026-11-25 10:00")) == expected
    with pytest.raises(ValueError, match="11/25/2026"):
        calendar.as_date("11/25/2026")


@pytest.mark.parametrize(
    ("local", "session"),
    [
        (dt.datetime(2026, 11, 25, 22, 45), "2026-11-25"),
        (dt.datetime(2026, 11, 25, 16, 0), "2026-11-25"),
        (dt.datetime(2026, 11, 25, 15, 0), "2026-11-24"),
        (dt.datetime(2026, 11, 26, 12, 0), "2026-11-25"),
        (dt.datetime(2026, 11, 27, 14, 0), "2026-11-27"),  # early close at 13:00
        (dt.datetime(2026, 11, 28, 12, 0), "2026-11-27"),
    ],
)
def test_latest_completed_session(local: dt.datetime, session: str) -> None:
    assert calendar.latest_completed_session(local.replace(tzinfo=NY)) == session


def test_trading_day_partitions_are_the_sessions_in_new_york_time() -> None:
    partitions = trading_days(dt.date(2026, 11, 1))
    assert partitions.timezone == "America/New_York"
    assert partitions.get_first_partition_key() == "2026-11-02"
    keys = partitions.get_partition_keys(current_time=dt.datetime(2026, 11, 30, 12, tzinfo=NY))
    assert keys == calendar.sessions("2026-11-02", "2026-11-30")
    assert "2026-11-26" not in keys


def test_todays_partition_exists_from_midnight_for_the_2245_run() -> None:
    partitions = trading_days(dt.date(2026, 11, 2))
    keys = partitions.get_partition_keys(current_time=dt.datetime(2026, 11, 25, 0, 30, tzinfo=NY))
    assert keys[-1] == "2026-11-25"


@pytest.mark.parametrize("today", ["2026-01-15", "2027-06-01", "2031-12-31"])
def test_the_partitions_definition_is_the_same_whichever_day_it_is_built(
    monkeypatch: pytest.MonkeyPatch, today: str
) -> None:
    """Holiday exclusions come from a fixed calendar horizon, never from today's date."""
    reference = trading_days(dt.date(2016, 1, 4))
    monkeypatch.setattr(pd.Timestamp, "today", classmethod(lambda cls, tz=None: pd.Timestamp(today)))
    monkeypatch.setattr(dt, "date", _FrozenDate.on(today))
    calendar.nyse.cache_clear()
    try:
        assert trading_days(dt.date(2016, 1, 4)) == reference
    finally:
        calendar.nyse.cache_clear()


def test_future_holidays_are_excluded_far_ahead() -> None:
    partitions = trading_days(dt.date(2016, 1, 4))
    keys = partitions.get_partition_keys(current_time=dt.datetime(2035, 12, 31, 12, tzinfo=NY))
    assert "2035-12-25" not in keys and "2035-11-22" not in keys  # Christmas, Thanksgiving 2035
    assert "2035-12-24" in keys


class _FrozenDate(dt.date):
    """A `datetime.date` whose today() is fixed, to build the calendar 'on another day'."""

    frozen: dt.date

    @classmethod
    def on(cls, iso: str) -> type[_FrozenDate]:
        return type("FrozenDate", (cls,), {"frozen": dt.date.fromisoformat(iso)})

    @classmethod
    def today(cls) -> dt.date:
        return cls.frozen
