"""Row-level checks on fetched data: what passes goes to the Master DB, what fails goes to quarantine.

Each rejected row keeps its payload and a reason naming the field and date, so nothing is silently
dropped and nothing bad is stored.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from turbomode_dagster import calendar

QUARANTINE_COLUMNS = ["table_name", "symbol", "date", "reason", "payload", "source"]
PRICE_FIELDS = ("open", "high", "low", "close")


def validate_bars(bars: pd.DataFrame, partition_day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split bars into (accepted, rejected): OHLC invariants, positive prices, volume, dates, duplicates."""
    frame = bars.reset_index(drop=True).copy()
    as_sent = frame.copy()  # quarantine payloads keep the values the source sent, not their coercions
    reasons = pd.Series("", index=frame.index, dtype=object)
    for field in (*PRICE_FIELDS, "volume"):
        frame[field] = pd.to_numeric(frame[field], errors="coerce")
        _flag(reasons, frame[field].isna(), f"missing or non-numeric {field}")
    for field in PRICE_FIELDS:
        _flag(reasons, frame[field] <= 0, f"non-positive {field}")
    _flag(reasons, frame["volume"] < 0, "negative volume")
    body_low = frame[["open", "close"]].min(axis=1)
    body_high = frame[["open", "close"]].max(axis=1)
    _flag(reasons, frame["low"] > body_low, "low above open or close")
    _flag(reasons, frame["high"] < body_high, "high below open or close")
    _flag_dates(reasons, frame["date"], partition_day)
    duplicated = frame.duplicated(["symbol", "date"], keep=False)
    _flag(reasons, duplicated, "duplicate (symbol, date): the source sent this key more than once")
    accepted = frame[reasons == ""].copy()
    accepted["volume"] = accepted["volume"].round().astype(np.int64)
    return accepted, _rejections(as_sent, reasons, "daily_bars", "date")


def validate_actions(
    frame: pd.DataFrame, table: str, date_column: str, value_column: str, partition_day: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Splits (ratio > 0) or dividends (amount >= 0) dated on or before the partition day."""
    frame = frame.reset_index(drop=True).copy()
    as_sent = frame.copy()
    reasons = pd.Series("", index=frame.index, dtype=object)
    frame[value_column] = pd.to_numeric(frame[value_column], errors="coerce")
    _flag(reasons, frame[value_column].isna(), f"missing or non-numeric {value_column}")
    bound = frame[value_column] <= 0 if table == "splits" else frame[value_column] < 0
    _flag(reasons, bound, f"{'non-positive' if table == 'splits' else 'negative'} {value_column}")
    _flag_dates(reasons, frame[date_column], partition_day)
    _flag(reasons, frame.duplicated(["symbol", date_column], keep=False), f"duplicate (symbol, {date_column})")
    return frame[reasons == ""].copy(), _rejections(as_sent, reasons, table, date_column)


def validate_fundamentals(frame: pd.DataFrame, partition_day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fundamentals must have been available by the partition day and after their period end."""
    frame = frame.reset_index(drop=True).copy()
    reasons = pd.Series("", index=frame.index, dtype=object)
    _flag(reasons, frame["available_date"].astype(str) > partition_day, f"available after {partition_day}")
    _flag(
        reasons,
        frame["available_date"].astype(str) < frame["period_end"].astype(str),
        "available before period end",
    )
    _flag(reasons, frame.duplicated(["symbol", "period_end"], keep=False), "duplicate (symbol, period_end)")
    return frame[reasons == ""].copy(), _rejections(frame, reasons, "fundamentals", "period_end")


def _flag_dates(reasons: pd.Series, dates: pd.Series, partition_day: str) -> None:
    text = dates.astype(str)
    well_formed = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}") & pd.to_datetime(text, errors="coerce").notna()
    _flag(reasons, ~well_formed, "date is not a valid YYYY-MM-DD")
    _flag(reasons, well_formed & (text > partition_day), f"dated after the partition day {partition_day}")
    if well_formed.any():
        valid = text[well_formed]
        sessions = set(calendar.sessions(valid.min(), valid.max()))
        _flag(reasons, well_formed & ~text.isin(sessions), "not an NYSE trading day")


def _flag(reasons: pd.Series, mask: pd.Series, reason: str) -> None:
    """Record the first reason a row fails (later checks do not overwrite it)."""
    hit = mask.fillna(False).astype(bool) & (reasons == "")
    reasons[hit] = reason


def _rejections(frame: pd.DataFrame, reasons: pd.Series, table: str, date_column: str) -> pd.DataFrame:
    bad = frame[reasons != ""]
    if bad.empty:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    payload_columns = [c for c in bad.columns if c != "source"]
    return pd.DataFrame(
        {
            "table_name": table,
            "symbol": bad["symbol"].astype(str),
            "date": bad[date_column].astype(str),
            "reason": _numbered(bad, reasons[reasons != ""], date_column),
            "payload": [
                json.dumps({k: _jsonable(v) for k, v in row.items()}, sort_keys=True, default=str)
                for row in bad[payload_columns].to_dict("records")
            ],
            "source": bad.get("source", "unknown"),
        }
    ).reset_index(drop=True)


def _numbered(bad: pd.DataFrame, reason: pd.Series, date_column: str) -> pd.Series:
    """Rows sharing a quarantine key (symbol, date, reason) get 'copy i of n', so each keeps its own row."""
    key = [bad["symbol"].astype(str), bad[date_column].astype(str), reason]
    copy = reason.groupby(key).cumcount() + 1
    size = reason.groupby(key).transform("size")
    return reason.where(size == 1, reason + " (copy " + copy.astype(str) + " of " + size.astype(str) + ")")


def _jsonable(value: object) -> object:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value
