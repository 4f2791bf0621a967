"""The one place adjusted prices come from: as-traded bars plus splits and dividends.

Two bases with the same event conventions, so returns across an ex-date or a split are economic
returns on both:
- backward (`adjusted_bars`), as data vendors do it: the latest bar keeps its traded price and every
  earlier bar is scaled by the events after it; adding a later event rescales every earlier row.
- forward (`forward_adjusted_bars`), causal: the first bar keeps its traded price and every bar is
  scaled by the events on or before it, so a row never changes when later sessions arrive. This is
  what the stored `adjusted_prices` dataset holds. The two differ per symbol by one constant factor,
  so ratios of prices (returns) are the same on both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRICE_COLUMNS = ["open", "high", "low", "close"]


def adjusted_bars(bars: pd.DataFrame, splits: pd.DataFrame, dividends: pd.DataFrame) -> pd.DataFrame:
    """Split- and dividend-adjusted OHLCV, plus `close_raw` (the traded close) and `adj_factor`.

    `bars` has symbol, date, open, high, low, close, volume as traded; `splits` symbol, date, ratio
    (new shares per old share); `dividends` symbol, ex_date, amount (per share, traded basis). A
    dividend on ex-date t scales earlier prices by (1 - amount / close on the session before t).
    Volume is scaled by split ratios only, so share counts stay comparable across a split.
    """
    frame = bars.sort_values(["symbol", "date"]).reset_index(drop=True)
    split_on, price_event = _event_factors(frame, splits, dividends)
    # The factor for a bar is the product of the event factors strictly after it, within its symbol.
    price_factor = _product_after(frame["symbol"], price_event)
    volume_factor = _product_after(frame["symbol"], split_on)
    return _scaled(frame, price_factor, volume_factor)


def forward_adjusted_bars(bars: pd.DataFrame, splits: pd.DataFrame, dividends: pd.DataFrame) -> pd.DataFrame:
    """Causally adjusted OHLCV, plus `close_raw` and `adj_factor` (adjusted = traded x adj_factor).

    Same inputs and event conventions as `adjusted_bars`; each bar's factor is the inverse of the
    product of the event factors on or before it, from the symbol's first bar, so a bar's row depends
    only on the bars and events up to it (a running product: computing with later data appended gives
    the same bits).
    """
    frame = bars.sort_values(["symbol", "date"]).reset_index(drop=True)
    split_on, price_event = _event_factors(frame, splits, dividends)
    price_factor = 1.0 / price_event.groupby(frame["symbol"]).cumprod()
    volume_factor = 1.0 / split_on.groupby(frame["symbol"]).cumprod()
    return _scaled(frame, price_factor, volume_factor)


def _scaled(frame: pd.DataFrame, price_factor: pd.Series, volume_factor: pd.Series) -> pd.DataFrame:
    """`frame` with prices and volume multiplied by the factors, plus `close_raw` and `adj_factor`."""
    out = frame.copy()
    out["close_raw"] = frame["close"]
    for column in PRICE_COLUMNS:
        out[column] = frame[column] * price_factor
    out["volume"] = frame["volume"] * volume_factor
    out["adj_factor"] = price_factor
    return out


def _event_factors(frame: pd.DataFrame, splits: pd.DataFrame, dividends: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per bar of `frame` (sorted by symbol, date): the split ratio on it, and its price event factor.

    The price event factor is (1 / split ratio) x (1 - dividend / close on the session before), 1 on
    bars with no event.
    """
    keys = frame[["symbol", "date"]]
    split_on = _event_values(keys, splits.rename(columns={"ratio": "value"}), default=1.0, combine="prod")
    previous_close = frame.groupby("symbol")["close"].shift(1)
    dividend_on = _event_values(
        keys, dividends.rename(columns={"ex_date": "date", "amount": "value"}), default=0.0, combine="sum"
    )
    dividend_factor = (1.0 - dividend_on / previous_close).where(dividend_on > 0, 1.0).fillna(1.0)
    return split_on, (1.0 / split_on) * dividend_factor


def _event_values(keys: pd.DataFrame, events: pd.DataFrame, default: float, combine: str) -> pd.Series:
    """The event value on each (symbol, date) bar (same-day events combined), `default` where none.

    An event dated on a day without a bar (a quarantined or missing bar) lands on the symbol's next bar,
    so it is not lost; one after the last bar lands nowhere, so later events cannot leak backwards.
    """
    if events.empty:
        return pd.Series(default, index=keys.index, dtype=float)
    dated = events[["symbol", "date", "value"]].assign(day=pd.to_datetime(events["date"]))
    bar_days = keys.assign(day=pd.to_datetime(keys["date"]), bar_date=keys["date"])[["symbol", "day", "bar_date"]]
    landed = pd.merge_asof(
        dated.sort_values("day"), bar_days.sort_values("day"), on="day", by="symbol", direction="forward"
    ).dropna(subset=["bar_date"])
    per_day = landed.groupby(["symbol", "bar_date"])["value"].agg(combine).rename_axis(["symbol", "date"])
    joined = keys.merge(per_day.rename("value").reset_index(), on=["symbol", "date"], how="left")
    return pd.Series(joined["value"].to_numpy(dtype=float), index=keys.index).fillna(default)


def _product_after(symbols: pd.Series, factors: pd.Series) -> pd.Series:
    """For each row, the product of `factors` on the later rows of the same symbol (rows sorted by date)."""
    logs = np.log(factors.astype(float))
    total = logs.groupby(symbols).transform("sum")
    through_here = logs.groupby(symbols).cumsum()
    return np.exp(total - through_here)


STORED_COLUMNS = ["symbol", "date", "open", "high", "low", "close", "volume", "close_raw", "adj_factor"]


def forward_adjusted_window(
    bars: pd.DataFrame, splits: pd.DataFrame, dividends: pd.DataFrame, start: str, end: str
) -> pd.DataFrame:
    """The forward-adjusted rows dated start..end (date as datetime64), from `bars` read from the first bar.

    The factors run from each symbol's first bar, so `bars` must hold its whole history up to `end`.
    """
    adjusted = forward_adjusted_bars(bars, splits, dividends)
    rows = adjusted[(adjusted["date"] >= start) & (adjusted["date"] <= end)]
    return rows[STORED_COLUMNS].assign(
        date=pd.to_datetime(rows["date"]).astype("datetime64[ns]"), volume=rows["volume"].astype(float)
    )
