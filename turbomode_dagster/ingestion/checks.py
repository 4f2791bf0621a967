"""The data-quality rules behind the market-data asset checks and the pre-commit validation (no Dagster).

The jump rule lives here once: the validation quarantines a bar that breaks it before the commit, and
the `no_unexplained_jumps` check applies it to the whole stored history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

JUMP_LIMIT = 0.6  # |log close-to-close move| above this (-45% / +82%) is a jump unless a split explains it


def missing_symbols(bars_on_day: pd.DataFrame, universe: list[str]) -> list[str]:
    """Universe symbols with no stored bar on the day."""
    present = set(bars_on_day["symbol"])
    return [s for s in universe if s not in present]


def worst_session(
    closes: pd.DataFrame, universe: list[str], sessions: list[str], floor: float
) -> tuple[str, float, list[str], int]:
    """The session of `sessions` with the fewest universe symbols stored (the latest among equals), its
    coverage, its missing symbols, and how many sessions have a coverage below `floor`."""
    stored = closes[closes["date"].between(sessions[0], sessions[-1]) & closes["symbol"].isin(universe)]
    counts = stored.groupby("date")["symbol"].nunique().reindex(sessions, fill_value=0)
    worst = counts[counts == counts.min()].index[-1]
    on_worst = stored.loc[stored["date"] == worst, "symbol"]
    short = int((counts / len(universe) < floor).sum())
    return (
        worst,
        float(counts[worst]) / len(universe),
        missing_symbols(pd.DataFrame({"symbol": on_worst}), universe),
        short,
    )


def split_adjusted_log_close(bars: pd.DataFrame, splits: pd.DataFrame) -> np.ndarray:
    """log(close) plus the log of every split ratio recorded for the symbol on or before the bar's date.

    On this scale a 4:1 split's 75% drop in traded prices vanishes, so the move between any two bars of
    a symbol is the difference of their values, whatever splits (or missing days) lie between them.
    """
    logs = np.log(bars["close"].to_numpy(dtype=float))
    if bars.empty or splits.empty:
        return logs
    events = splits[["symbol", "date"]].copy()
    events["level"] = np.log(pd.to_numeric(splits["ratio"]).to_numpy(dtype=float))
    events = events.sort_values(["symbol", "date"])
    events["level"] = events.groupby("symbol")["level"].cumsum()
    events["at"] = pd.to_datetime(events["date"], format="%Y-%m-%d")
    query = pd.DataFrame(
        {
            "symbol": bars["symbol"].to_numpy(dtype=object),
            "at": pd.to_datetime(bars["date"].to_numpy(), format="%Y-%m-%d"),
            "row": np.arange(len(bars)),
        }
    )
    matched = pd.merge_asof(
        query.sort_values("at"),
        events.astype({"symbol": object}).sort_values("at")[["symbol", "at", "level"]],
        on="at",
        by="symbol",
        direction="backward",
    )
    level = np.zeros(len(bars))
    level[matched["row"].to_numpy()] = matched["level"].fillna(0.0).to_numpy()
    return logs + level


def is_jump(move: np.ndarray | pd.Series | float) -> np.ndarray | pd.Series | bool:
    """The jump rule: a split-adjusted log move beyond JUMP_LIMIT either way."""
    return np.abs(move) > JUMP_LIMIT


def unexplained_jumps(bars: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Every stored bar (symbol, date, close) whose move from the symbol's previous bar is a jump."""
    frame = bars.sort_values(["symbol", "date"])[["symbol", "date", "close"]].reset_index(drop=True)
    adjusted = pd.Series(split_adjusted_log_close(frame, splits))
    by_symbol = frame.groupby("symbol")
    frame["previous_date"] = by_symbol["date"].shift(1)
    frame["previous_close"] = by_symbol["close"].shift(1)
    frame["move"] = adjusted - adjusted.groupby(frame["symbol"]).shift(1)
    return frame[is_jump(frame["move"])].reset_index(drop=True)


def jumps_from_accepted(candidates: pd.DataFrame, previous: pd.DataFrame, splits: pd.DataFrame) -> pd.Series:
    """Why each candidate bar is a jump from its symbol's last accepted close ('' when it is not).

    `previous` holds each symbol's stored bar before the candidates. A bar that jumps is not accepted,
    so the next one is measured from the last bar that was: after the commit, every pair of neighbouring
    stored bars passes `unexplained_jumps`.
    """
    reasons = np.full(len(candidates), "", dtype=object)
    if candidates.empty:
        return pd.Series(reasons, index=candidates.index, dtype=object)
    columns = ["symbol", "date", "close"]
    parts = [previous[columns].assign(position=-1), candidates[columns].assign(position=np.arange(len(candidates)))]
    frame = pd.concat([p for p in parts if not p.empty], ignore_index=True).sort_values(
        ["symbol", "date"], kind="stable", ignore_index=True
    )
    frame["adjusted"] = split_adjusted_log_close(frame, splits)
    move = frame["adjusted"] - frame.groupby("symbol")["adjusted"].shift(1)
    suspects = set(frame.loc[is_jump(move) & (frame["position"] >= 0), "symbol"])
    for _, rows in frame[frame["symbol"].isin(suspects)].groupby("symbol", sort=False):
        last = None
        for row in rows.itertuples(index=False):
            if last is not None and row.position >= 0 and is_jump(row.adjusted - last.adjusted):
                reasons[row.position] = (
                    f"close {row.close} is a split-adjusted log move of {row.adjusted - last.adjusted:+.2f} "
                    f"from the close {last.close} on {last.date}, beyond the jump limit {JUMP_LIMIT}"
                )
            else:
                last = row
    return pd.Series(reasons, index=candidates.index, dtype=object)
