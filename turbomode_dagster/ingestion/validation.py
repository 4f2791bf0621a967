"""Row-level checks on fetched data: what passes goes to the Master DB, what fails goes to quarantine.

Each rejected row keeps its payload and a reason naming the field and date, so nothing is silently
dropped and nothing bad is stored. Numbers must be finite and within the bounds below, so nothing
that SQLite would wrap or store as Infinity gets near it.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from turbomode_dagster import calendar
from turbomode_dagster.ingestion.checks import jumps_from_accepted
from turbomode_dagster.sources.base import ORIGIN, REJECTED

QUARANTINE_COLUMNS = ["table_name", "symbol", "date", "reason", "payload", "source"]
PRICE_FIELDS = ("open", "high", "low", "close")
MIN_PRICE = 1e-4  # a hundredth of a cent: the finest price the sources keep (four decimals)
MAX_PRICE = 1e7  # $10 million a share, over ten times the dearest US listing (BRK-A)
MAX_VOLUME = 2**63  # SQLite's INTEGER is signed 64-bit: from here up a volume would wrap negative
SPLIT_RATIO_BOUNDS = (1e-4, 1e4)  # from a 1-for-10,000 reverse split to a 10,000-for-1 split
FUNDAMENTAL_VALUES = ("revenue", "net_income", "eps", "book_value_per_share", "shares_outstanding")
BAR_CONTEXT_COLUMNS = ["symbol", "date", "close"]
SPLIT_CONTEXT_COLUMNS = ["symbol", "date", "ratio"]


def validate_bars(
    bars: pd.DataFrame,
    partition_day: str,
    previous: pd.DataFrame | None = None,
    splits: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split bars into (accepted, rejected): numbers, OHLC invariants, dates, duplicates, then jumps.

    A bar that passes the rest is measured against its symbol's last accepted close (`previous`: each
    symbol's stored bar before the batch, as symbol, date, close) with `splits` undone, so a bar the
    blocking jump check would fail is quarantined before it is written.
    """
    frame = bars.reset_index(drop=True).copy()
    as_sent = frame.copy()  # quarantine payloads keep the values the source sent, not their coercions
    reasons = _source_reasons(frame)
    for field in (*PRICE_FIELDS, "volume"):
        frame[field] = _finite_numbers(frame[field], field, reasons)
    for field in PRICE_FIELDS:
        _flag(reasons, frame[field] <= 0, f"non-positive {field}")
    for field in PRICE_FIELDS:
        _flag(reasons, frame[field] < MIN_PRICE, f"{field} below the minimum price {MIN_PRICE}")
        _flag(reasons, frame[field] > MAX_PRICE, f"{field} above the maximum price {MAX_PRICE:.0e}")
    _flag(reasons, frame["volume"] < 0, "negative volume")
    _flag(reasons, frame["volume"] != np.floor(frame["volume"]), "non-integral volume")
    _flag(reasons, frame["volume"] >= MAX_VOLUME, "volume beyond a signed 64-bit integer")
    body_low = frame[["open", "close"]].min(axis=1)
    body_high = frame[["open", "close"]].max(axis=1)
    _flag(reasons, frame["low"] > body_low, "low above open or close")
    _flag(reasons, frame["high"] < body_high, "high below open or close")
    _flag_dates(reasons, frame["date"], partition_day)
    _flag_duplicates(reasons, frame, "date", "duplicate (symbol, date): the source sent this key more than once")
    passing = reasons == ""
    jumps = jumps_from_accepted(
        frame[passing],
        _or_empty(previous, BAR_CONTEXT_COLUMNS),
        _or_empty(splits, SPLIT_CONTEXT_COLUMNS),
    )
    _flag(reasons, (jumps != "").reindex(frame.index, fill_value=False), jumps.reindex(frame.index, fill_value=""))
    accepted = _without_source_columns(frame[reasons == ""])
    accepted["volume"] = accepted["volume"].astype(np.int64)
    return accepted, _rejections(as_sent, reasons, "daily_bars", "date")


def validate_actions(
    frame: pd.DataFrame, table: str, date_column: str, value_column: str, partition_day: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Splits (ratio within SPLIT_RATIO_BOUNDS) or dividends (amount >= 0), finite, dated by the partition day."""
    frame = frame.reset_index(drop=True).copy()
    as_sent = frame.copy()
    reasons = _source_reasons(frame)
    frame[value_column] = _finite_numbers(frame[value_column], value_column, reasons)
    if table == "splits":
        low, high = SPLIT_RATIO_BOUNDS
        _flag(reasons, frame[value_column] <= 0, f"non-positive {value_column}")
        _flag(reasons, frame[value_column] < low, f"{value_column} below {low}")
        _flag(reasons, frame[value_column] > high, f"{value_column} above {high:.0e}")
    else:
        _flag(reasons, frame[value_column] < 0, f"negative {value_column}")
        _flag(reasons, frame[value_column] > MAX_PRICE, f"{value_column} above the maximum price {MAX_PRICE:.0e}")
    _flag_dates(reasons, frame[date_column], partition_day)
    _flag_duplicates(reasons, frame, date_column, f"duplicate (symbol, {date_column})")
    return _without_source_columns(frame[reasons == ""]), _rejections(as_sent, reasons, table, date_column)


def validate_fundamentals(frame: pd.DataFrame, partition_day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fundamentals: real dates, available by the partition day and after their period end, finite values.

    A missing value is allowed (the column is nullable); text or an infinity is not.
    """
    frame = frame.reset_index(drop=True).copy()
    as_sent = frame.copy()
    reasons = _source_reasons(frame)
    for column in ("period_end", "available_date"):
        _flag(reasons, ~_well_formed_dates(frame[column]), f"{column} is not a valid YYYY-MM-DD")
    for column in FUNDAMENTAL_VALUES:
        if column in frame:
            numbers = _numbers(frame[column])
            _flag(reasons, numbers.isna() & frame[column].notna(), f"non-numeric {column}")
            _flag(reasons, np.isinf(numbers), f"non-finite {column}")
            frame[column] = numbers
    _flag(reasons, frame["available_date"].astype(str) > partition_day, f"available after {partition_day}")
    _flag(
        reasons,
        frame["available_date"].astype(str) < frame["period_end"].astype(str),
        "available before period end",
    )
    _flag_duplicates(reasons, frame, "period_end", "duplicate (symbol, period_end)")
    return _without_source_columns(frame[reasons == ""]), _rejections(as_sent, reasons, "fundamentals", "period_end")


def reject_all(frame: pd.DataFrame, reason: str, table: str, date_column: str) -> pd.DataFrame:
    """Quarantine rows for every row of `frame`, all with `reason` (when validating them failed outright)."""
    frame = frame.reset_index(drop=True)
    return _rejections(frame, np.full(len(frame), reason, dtype=object), table, date_column)


def _source_reasons(frame: pd.DataFrame) -> np.ndarray:
    """Each row's reason so far (an object array, '' for none), starting with the one its source gave."""
    if REJECTED not in frame:
        return np.full(len(frame), "", dtype=object)
    given = frame[REJECTED]
    return given.where(given.notna() & (given.astype(str) != ""), "").astype(str).to_numpy(dtype=object)


def _finite_numbers(values: pd.Series, field: str, reasons: np.ndarray) -> pd.Series:
    """`values` as floats; a missing, non-numeric or infinite value flags its row naming `field`."""
    numbers = _numbers(values)
    _flag(reasons, numbers.isna(), f"missing or non-numeric {field}")
    _flag(reasons, np.isinf(numbers), f"non-finite {field}")
    return numbers


def _numbers(values: pd.Series) -> pd.Series:
    """Floats from whatever a source sent: text that is no number (or an odd object) becomes NaN."""
    try:
        numbers = pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError):  # an object pandas cannot even try to parse, such as a list
        numbers = values.map(_one_number)
    return pd.Series(numbers, index=values.index).astype(float)


def _one_number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _well_formed_dates(dates: pd.Series) -> pd.Series:
    text = dates.astype(str)
    return text.str.fullmatch(r"\d{4}-\d{2}-\d{2}") & pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").notna()


def _flag_dates(reasons: np.ndarray, dates: pd.Series, partition_day: str) -> None:
    text = dates.astype(str)
    well_formed = _well_formed_dates(dates)
    _flag(reasons, ~well_formed, "date is not a valid YYYY-MM-DD")
    _flag(reasons, well_formed & (text > partition_day), f"dated after the partition day {partition_day}")
    known = well_formed & (text <= partition_day)
    if known.any():
        valid = text[known]
        sessions = set(calendar.sessions(valid.min(), valid.max()))
        _flag(reasons, known & ~text.isin(sessions), "not an NYSE trading day")


def _flag_duplicates(reasons: np.ndarray, frame: pd.DataFrame, date_column: str, reason: str) -> None:
    """Every copy of a repeated (symbol, date) key; rows the source could not read are no copies."""
    readable = frame[_source_reasons(frame) == ""]
    duplicated = readable.duplicated(["symbol", date_column], keep=False)
    _flag(reasons, duplicated.reindex(frame.index, fill_value=False), reason)


def _flag(reasons: np.ndarray, mask: pd.Series | np.ndarray, reason: str | pd.Series) -> None:
    """Record the first reason a row fails (later checks do not overwrite it); a missing mask value is no hit."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        mask = pd.Series(mask, dtype=object).fillna(False).astype(bool).to_numpy()
    hit = mask & (reasons == "")
    reasons[hit] = reason.to_numpy(dtype=object)[hit] if isinstance(reason, pd.Series) else reason


def _or_empty(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns) if frame is None else frame[columns]


def _without_source_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in (ORIGIN, REJECTED) if c in frame]).copy()


def _rejections(frame: pd.DataFrame, reasons: np.ndarray, table: str, date_column: str) -> pd.DataFrame:
    reasons = pd.Series(reasons, index=frame.index, dtype=object)
    bad = frame[reasons != ""]
    if bad.empty:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    payload_columns = [c for c in bad.columns if c not in ("source", REJECTED)]
    return pd.DataFrame(
        {
            "table_name": table,
            "symbol": bad["symbol"].astype(str),
            "date": bad[date_column].astype(str),
            "reason": _numbered(bad, reasons[reasons != ""], date_column),
            "payload": [_payload(row) for row in bad[payload_columns].to_dict("records")],
            "source": bad["source"].astype(str) if "source" in bad else "unknown",
        }
    ).reset_index(drop=True)


def _payload(row: dict) -> str:
    """The row as strict JSON; an origin another source's rows lack is left out rather than null."""
    values = {k: _jsonable(v) for k, v in row.items() if not (k == ORIGIN and _missing(v))}
    return json.dumps(values, sort_keys=True, default=str, allow_nan=False)


def _numbered(bad: pd.DataFrame, reason: pd.Series, date_column: str) -> pd.Series:
    """Rows sharing a quarantine key (symbol, date, reason) get 'copy i of n', so each keeps its own row."""
    key = [bad["symbol"].astype(str), bad[date_column].astype(str), reason]
    copy = reason.groupby(key).cumcount() + 1
    size = reason.groupby(key).transform("size")
    return reason.where(size == 1, reason + " (copy " + copy.astype(str) + " of " + size.astype(str) + ")")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _jsonable(value: object) -> object:
    """A JSON value for what the source sent: NaN becomes null, an infinity the text 'inf' or '-inf'."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value
