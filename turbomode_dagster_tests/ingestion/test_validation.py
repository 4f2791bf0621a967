"""Row validation: every bad row is rejected with a reason naming its field or date; nothing is dropped."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from turbomode_dagster.ingestion.validation import (
    QUARANTINE_COLUMNS,
    validate_actions,
    validate_bars,
    validate_fundamentals,
)

DAY = "2026-11-25"
GOOD = {
    "symbol": "AAPL",
    "date": "2026-11-24",
    "open": 100.0,
    "high": 102.0,
    "low": 99.0,
    "close": 101.0,
    "volume": 1000,
    "source": "fake",
}


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"low": 100.5}, "low above open or close"),  # low > open
        ({"low": 100.5, "open": 101.5, "close": 100.0}, "low above open or close"),  # low > close
        ({"high": 100.5}, "high below open or close"),  # high < close
        ({"high": 100.5, "open": 101.0, "close": 99.5}, "high below open or close"),  # high < open
        ({"open": 0.0}, "non-positive open"),
        ({"close": -1.0, "low": -2.0}, "non-positive low"),
        ({"volume": -5}, "negative volume"),
        ({"close": "abc"}, "missing or non-numeric close"),
        ({"high": None}, "missing or non-numeric high"),
        ({"volume": "lots"}, "missing or non-numeric volume"),
        ({"date": "2026-11-27"}, f"dated after the partition day {DAY}"),
        ({"date": "2026-11-26"}, f"dated after the partition day {DAY}"),  # Thanksgiving, and the future
        ({"date": "2026-11-22"}, "not an NYSE trading day"),  # Sunday
        ({"date": "2025-11-27"}, "not an NYSE trading day"),  # Thanksgiving 2025
        ({"date": "2026-13-45"}, "date is not a valid YYYY-MM-DD"),
        ({"date": "24/11/2026"}, "date is not a valid YYYY-MM-DD"),
        ({"date": "2026-11-24T00:00"}, "date is not a valid YYYY-MM-DD"),
        ({"date": "2026-02-30"}, "date is not a valid YYYY-MM-DD"),
        ({"volume": 1000.5}, "non-integral volume"),
        ({"volume": 2**63}, "volume beyond a signed 64-bit integer"),
        ({"volume": 2**70}, "volume beyond a signed 64-bit integer"),
        ({"volume": 1e300}, "volume beyond a signed 64-bit integer"),
        ({"volume": "9223372036854775808"}, "volume beyond a signed 64-bit integer"),
        ({"close": 1e8, "high": 1e8}, "high above the maximum price 1e+07"),
        ({"open": 5e-5, "low": 5e-5}, "open below the minimum price 0.0001"),
        ({"low": -1e-9}, "non-positive low"),
        ({"volume": [1, 2]}, "missing or non-numeric volume"),
    ],
)
def test_a_bad_row_is_rejected_with_its_reason(change: dict, reason: str) -> None:
    bad = {**GOOD, "symbol": "MSFT", **change}
    accepted, rejected = validate_bars(frame(GOOD, bad), DAY)
    assert accepted["symbol"].tolist() == ["AAPL"]
    assert rejected[["table_name", "symbol", "date", "reason", "source"]].values.tolist() == [
        ["daily_bars", "MSFT", str(bad["date"]), reason, "fake"]
    ]
    payload = json.loads(rejected.loc[0, "payload"])
    assert payload == {k: v for k, v in bad.items() if k != "source"}, "the payload keeps what the source sent"


def strict_json(text: str) -> dict:
    """json.loads that refuses NaN and Infinity, which are not JSON."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"payload holds {name}: {text}"))


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
@pytest.mark.parametrize(("value", "kind"), [(np.inf, "non-finite"), (-np.inf, "non-finite"), ("inf", "non-finite")])
def test_an_infinite_number_is_quarantined_not_stored_or_crashing(field: str, value: object, kind: str) -> None:
    bad = {**GOOD, "symbol": "MSFT", field: value}
    accepted, rejected = validate_bars(frame(GOOD, bad), DAY)
    assert accepted["symbol"].tolist() == ["AAPL"]
    assert rejected["reason"].tolist() == [f"{kind} {field}"]
    assert strict_json(rejected.loc[0, "payload"])[field] in ("inf", "-inf")


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
def test_a_nan_is_missing(field: str) -> None:
    _, rejected = validate_bars(frame(GOOD, {**GOOD, "symbol": "MSFT", field: np.nan}), DAY)
    assert rejected["reason"].tolist() == [f"missing or non-numeric {field}"]
    assert strict_json(rejected.loc[0, "payload"])[field] is None


def test_accepted_volumes_are_exact_int64() -> None:
    big = 2**62 + 2**40
    accepted, rejected = validate_bars(frame({**GOOD, "volume": big}, {**GOOD, "date": DAY, "volume": "1200"}), DAY)
    assert rejected.empty
    assert accepted["volume"].tolist() == [big, 1200]
    assert accepted["volume"].dtype == np.int64


def test_rows_a_source_could_not_read_keep_its_reason_and_are_no_duplicates() -> None:
    unread = {**GOOD, "open": "x", "origin": "AAPL.csv line 3", "rejected": "AAPL.csv line 3: open 'x' is not a number"}
    good = {**GOOD, "origin": "AAPL.csv line 2", "rejected": None}
    accepted, rejected = validate_bars(frame(good, unread), DAY)
    assert accepted[["symbol", "date"]].values.tolist() == [["AAPL", "2026-11-24"]]
    assert "origin" not in accepted and "rejected" not in accepted
    assert rejected["reason"].tolist() == ["AAPL.csv line 3: open 'x' is not a number"]
    assert json.loads(rejected.loc[0, "payload"])["origin"] == "AAPL.csv line 3"


def test_a_bar_that_jumps_from_the_stored_close_is_quarantined() -> None:
    previous = pd.DataFrame({"symbol": ["AAPL"], "date": ["2026-11-23"], "close": [40.0]})
    accepted, rejected = validate_bars(frame(GOOD), DAY, previous=previous)
    assert accepted.empty
    assert rejected["reason"].tolist() == [
        "close 101.0 is a split-adjusted log move of +0.93 from the close 40.0 on 2026-11-23, beyond the jump limit 0.6"
    ]
    # The same drop explained by a 5-for-2 split recorded between the two bars is no jump.
    splits = pd.DataFrame({"symbol": ["AAPL"], "date": ["2026-11-24"], "ratio": [0.4]})
    accepted, rejected = validate_bars(frame(GOOD), DAY, previous=previous, splits=splits)
    assert rejected.empty and accepted["date"].tolist() == ["2026-11-24"]


def test_a_holiday_bar_is_rejected_when_it_is_not_after_the_partition_day() -> None:
    _, rejected = validate_bars(frame({**GOOD, "date": "2026-11-26"}), "2026-11-27")
    assert rejected["reason"].tolist() == ["not an NYSE trading day"]
    assert rejected["date"].tolist() == ["2026-11-26"]


def test_every_copy_of_a_duplicate_key_is_rejected() -> None:
    rows = frame(GOOD, {**GOOD, "close": 101.5}, {**GOOD, "date": "2026-11-25"})
    accepted, rejected = validate_bars(rows, DAY)
    assert accepted["date"].tolist() == ["2026-11-25"]
    assert len(rejected) == 2
    reason = "duplicate (symbol, date): the source sent this key more than once"
    assert rejected["reason"].tolist() == [f"{reason} (copy 1 of 2)", f"{reason} (copy 2 of 2)"]
    assert [json.loads(p)["close"] for p in rejected["payload"]] == [101.0, 101.5]


def test_rows_sharing_a_quarantine_key_are_numbered_so_none_is_overwritten() -> None:
    rows = frame({**GOOD, "volume": -1}, {**GOOD, "volume": -2}, {**GOOD, "symbol": "MSFT", "volume": -3})
    _, rejected = validate_bars(rows, DAY)
    assert rejected["reason"].tolist() == [
        "negative volume (copy 1 of 2)",
        "negative volume (copy 2 of 2)",
        "negative volume",
    ]
    keys = rejected[["table_name", "symbol", "date", "reason"]].drop_duplicates()
    assert len(keys) == len(rejected)


def test_the_first_failing_check_is_the_reason() -> None:
    _, rejected = validate_bars(frame({**GOOD, "open": -1.0, "volume": -1, "date": "2026-11-22"}), DAY)
    assert rejected["reason"].tolist() == ["non-positive open"]


def test_nothing_is_silently_dropped() -> None:
    sessions = ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24", "2026-11-25"]
    good = [{**GOOD, "symbol": s, "date": d} for s in ("AAPL", "MSFT", "NVDA") for d in sessions]
    bad = [
        {**GOOD, "symbol": "AAPL", "date": "2026-11-21"},
        {**GOOD, "symbol": "MSFT", "low": 150.0},
        {**GOOD, "symbol": "NVDA", "date": "2026-11-30"},
        {**GOOD, "symbol": "IBM", "volume": -1},
    ]
    rows = frame(*good, *bad)
    accepted, rejected = validate_bars(rows, DAY)
    assert len(accepted) + len(rejected) == len(rows)
    assert len(rejected) == len(bad) + 1  # the MSFT bad row also duplicates MSFT's good 2026-11-24
    assert list(rejected.columns) == QUARANTINE_COLUMNS
    assert accepted["volume"].dtype == np.int64
    assert accepted["close"].dtype == np.float64


def test_valid_rows_pass_unchanged() -> None:
    rows = frame(GOOD, {**GOOD, "date": DAY, "open": 101.0, "high": 101.0, "low": 101.0, "close": 101.0})
    accepted, rejected = validate_bars(rows, DAY)
    assert rejected.empty
    assert accepted[["symbol", "date", "open", "high", "low", "close", "volume", "source"]].values.tolist() == [
        list(r.values()) for r in rows.to_dict("records")
    ]


def test_an_empty_fetch_validates_to_empty_frames() -> None:
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in GOOD})
    accepted, rejected = validate_bars(empty, DAY)
    assert accepted.empty and rejected.empty
    assert list(rejected.columns) == QUARANTINE_COLUMNS


def test_splits_and_dividends_are_checked() -> None:
    splits = pd.DataFrame(
        {
            "symbol": ["AAPL", "MSFT", "NVDA", "AMD", "AMD"],
            "date": [DAY, "2026-11-27", "2026-11-24", "2026-11-24", "2026-11-24"],
            "ratio": [4.0, 2.0, 0.0, 2.0, 3.0],
            "source": "fake",
        }
    )
    accepted, rejected = validate_actions(splits, "splits", "date", "ratio", DAY)
    assert accepted["symbol"].tolist() == ["AAPL"]
    assert dict(zip(rejected["symbol"] + " " + rejected["date"], rejected["reason"], strict=True)) == {
        "MSFT 2026-11-27": f"dated after the partition day {DAY}",
        "NVDA 2026-11-24": "non-positive ratio",
        "AMD 2026-11-24": "duplicate (symbol, date) (copy 2 of 2)",
    }
    assert len(rejected) == 4
    assert set(rejected["table_name"]) == {"splits"}

    dividends = pd.DataFrame(
        {"symbol": ["AAPL", "MSFT", "NVDA"], "ex_date": [DAY, DAY, DAY], "amount": [0.25, -0.1, "n/a"], "source": "f"}
    )
    accepted, rejected = validate_actions(dividends, "dividends", "ex_date", "amount", DAY)
    assert accepted["symbol"].tolist() == ["AAPL"]
    assert rejected["reason"].tolist() == ["negative amount", "missing or non-numeric amount"]
    assert json.loads(rejected.loc[1, "payload"])["amount"] == "n/a"


@pytest.mark.parametrize(
    ("table", "column", "value", "reason"),
    [
        ("splits", "ratio", np.inf, "non-finite ratio"),
        ("splits", "ratio", np.nan, "missing or non-numeric ratio"),
        ("splits", "ratio", 1e5, "ratio above 1e+04"),
        ("splits", "ratio", 1e-5, "ratio below 0.0001"),
        ("dividends", "amount", np.inf, "non-finite amount"),
        ("dividends", "amount", 1e300, "amount above the maximum price 1e+07"),
    ],
)
def test_corporate_actions_must_be_finite_and_in_range(table: str, column: str, value: float, reason: str) -> None:
    date_column = "date" if table == "splits" else "ex_date"
    rows = pd.DataFrame({"symbol": ["AAPL", "MSFT"], date_column: [DAY, DAY], column: [2.0, value], "source": "f"})
    accepted, rejected = validate_actions(rows, table, date_column, column, DAY)
    assert accepted["symbol"].tolist() == ["AAPL"]
    assert rejected["reason"].tolist() == [reason]
    strict_json(rejected.loc[0, "payload"])


def test_fundamentals_must_be_known_by_the_partition_day() -> None:
    rows = pd.DataFrame(
        {
            "symbol": ["AAPL", "MSFT", "NVDA"],
            "period_end": ["2026-09-30", "2026-09-30", "2026-09-30"],
            "available_date": ["2026-10-30", "2026-11-30", "2026-09-01"],
            "source": "fake",
        }
    )
    accepted, rejected = validate_fundamentals(rows, DAY)
    assert accepted["symbol"].tolist() == ["AAPL"]
    assert rejected["reason"].tolist() == [f"available after {DAY}", "available before period end"]
    assert rejected["date"].tolist() == ["2026-09-30", "2026-09-30"]


def test_fundamental_values_must_be_finite_numbers_or_missing() -> None:
    rows = pd.DataFrame(
        {
            "symbol": ["AAPL", "MSFT", "NVDA", "AMD", "IBM"],
            "period_end": ["2026-09-30", "2026-09-30", "2026-09-30", "2026-09-31", "2026-09-30"],
            "available_date": ["2026-10-30"] * 5,
            "revenue": [1e9, np.inf, "lots", 1e9, None],
            "eps": [1.5, 1.5, 1.5, 1.5, None],
            "source": "fake",
        }
    )
    accepted, rejected = validate_fundamentals(rows, DAY)
    assert accepted["symbol"].tolist() == ["AAPL", "IBM"], "a missing value is allowed"
    assert rejected["reason"].tolist() == [
        "non-finite revenue",
        "non-numeric revenue",
        "period_end is not a valid YYYY-MM-DD",
    ]
    for payload in rejected["payload"]:
        strict_json(payload)
