"""The built-in synthetic market: a deterministic, offline source of realistic daily data.

`SampleSource(seed, planted_effect)` serves any symbol on NYSE sessions from `EPOCH` (2000-01-03).
Every number is a pure function of (seed, planted_effect, symbol, session): each symbol's whole path
is simulated over a fixed horizon of `HORIZON` sessions from the epoch, with fixed-size random
draws from a numpy Generator seeded by a SHA-256 digest of (seed, stream name), never Python's
`hash()`. So a day-by-day fetch returns bit-identical floats to a bulk fetch over the same range,
and the other symbols requested never change a symbol's numbers. A symbol outside
`DEFAULT_UNIVERSE` gets a sector (and industry) picked from a digest of its name.

The model, for symbol i on session t (log returns; all series vectorised over sessions):

* market factor m_t and sector factor f_t (one per sector name, shared by its symbols), each
  Gaussian with its own stochastic volatility;
* idiosyncratic volatility sigma_t = sigma_i * exp(h_t), with h_t an AR(1) in log-vol (phi 0.985,
  stationary sd 0.45; computed with `scipy.signal.lfilter`), which gives volatility clustering;
* r_t = MU + beta_m * m_t + beta_s * f_t + sigma_t * e_t + planted_effect * sigma_{t-1} * s_{t-1},
  with e_t Student-t (5 d.o.f.) scaled to unit variance, clipped to [-0.4, 0.4]. MU = 0.0003 for
  every symbol. Typical total daily vol is 1-3 %.

THE PLANTED EFFECT. s_t is a per-symbol AR(1) "attention" signal with unit stationary variance and
a half-life of `SIGNAL_HALF_LIFE` = 3 sessions (phi = 2 ** (-1/3) ~ 0.794), independent of every
other series. It is observable at the close of day t through the volume:

    volume_t = shares_0 * turnover_i * split_factor_t
               * exp(VOLUME_SIGNAL_LOADING * s_t + 0.3 * h_t + 0.15 * |e_t| + 0.3 * n_t)

with VOLUME_SIGNAL_LOADING = 0.5 and n_t iid N(0, 1). So log(volume_t / mean(volume_{t-19..t}))
(split-adjusted volume relative to its 20-session average, a scale-free feature known at the close
of t) is correlated about 0.7 with s_t. The signal enters the *next* day's expected return:
E[r_{t+1} | day t] gets + planted_effect * sigma_t * s_t. Strength 1.0 means a one-standard-deviation
signal moves the next session's expected log return by one idiosyncratic daily standard deviation
(sigma_t); because s persists, the expected 5-session forward log return moves by about
3.3 * planted_effect * sigma_t * s_t. Measured on the 83 default symbols over 2010-2019 (seeds 7
and 8), the mean daily cross-sectional Spearman rank IC between that volume feature and the
next-5-session split-adjusted return is 0.000-0.002 (standard error ~0.004) for planted_effect=0,
~0.045 for 0.05, ~0.09 for 0.1, ~0.23 for 0.3, ~0.33 for 0.5 and ~0.43 for 1.0 (IC ~ 0.9 *
planted_effect for small effects). With planted_effect=0 returns are a pure random walk
(constant drift, stochastic vol, factors): nothing observable before t predicts the mean of r_t.

PRICES AS TRADED. The economic price follows P_t = P_{t-1} * (exp(r_t) - y_t), where y_t is the
quarterly dividend yield on an ex-date and 0 otherwise; so on an ex-date the traded close is
close_{t-1} * exp(r_t) - amount, with amount = y_t * close_{t-1} (rounded to 4 decimals). About
three symbols in four pay, with ex-dates every 60-66 sessions. Most symbols split when the traded
close exceeds a per-symbol threshold of $400-600: on the next session (one later if that is an
ex-date) a 2:1, 3:1 or 4:1 split divides the traded price by the ratio and multiplies volume and
shares outstanding by it; a close below $5 brings a 1-for-10 reverse split (ratio 0.1) the same
way, so no symbol drifts into a penny stock. The open is the previous close moved by an overnight gap; high and low
extend max/min(open, close) by random intraday ranges. Prices are rounded to cents with
low <= min(open, close) <= max(open, close) <= high and every price >= 0.01.

FUNDAMENTALS. One row per calendar quarter end: available_date is the first session at least 30-45
days (drawn per symbol and quarter) after period_end. shares_outstanding follows the split factor
as of period_end; revenue comes from the quarter's average market cap over a per-symbol
price/sales ratio, net_income from a noisy margin, eps = net_income / shares, book value per share
from a price/book ratio. `fetch` returns the quarters with available_date <= end and
period_end >= start - 365 days, so a first load gets a year of context.

A REGIME SHIFT (`RegimeShift`, off by default) changes the market from one session on, to prove
that drift monitoring notices it: every return's deviation from MU (market, sector and idiosyncratic
parts, and the intraday ranges) is multiplied by `volatility_multiplier`, `drift_change` is added to
the daily drift, and `planted_effect` (when given) replaces the planted effect's strength. Sessions
before the start are bit-identical to the market without a shift.

Splits and dividends are those dated within [start, end]; bars cover the sessions in [start, end]
(up to the calendar's last session). Each symbol's simulated path is cached (LRU, 512 symbols).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from turbomode_dagster import calendar
from turbomode_dagster.sources.base import (
    BAR_COLUMNS,
    DIVIDEND_COLUMNS,
    FUNDAMENTAL_COLUMNS,
    METADATA_COLUMNS,
    SPLIT_COLUMNS,
    MarketDataBatch,
)
from turbomode_dagster.universe import DEFAULT_UNIVERSE

EPOCH = dt.date(2000, 1, 3)
HORIZON = 10_080  # sessions simulated per path (about 40 years from the epoch)
MU = 0.0003  # daily drift of every symbol's log return
SIGNAL_HALF_LIFE = 3.0  # sessions
SIGNAL_PHI = 0.5 ** (1.0 / SIGNAL_HALF_LIFE)
VOLUME_SIGNAL_LOADING = 0.5
FUNDAMENTAL_CONTEXT_DAYS = 365
CACHE_SIZE = 512

_N_QUARTERS = HORIZON // 63 + 8
_N_DIVIDENDS = HORIZON // 60 + 2
_MAX_SPLITS = 32
REVERSE_SPLIT_FLOOR = 5.0
REVERSE_SPLIT_RATIO = 0.1
_VOL_PHI = 0.985
_VOL_SD = 0.45
_T_DOF = 5.0
_MAX_CENTS = np.iinfo(np.int32).max
_SECTORS = sorted({listing.sector for listing in DEFAULT_UNIVERSE.values()})
_INDUSTRIES = {
    sector: sorted({li.industry for li in DEFAULT_UNIVERSE.values() if li.sector == sector}) for sector in _SECTORS
}


def _digest(name: str) -> int:
    """A stable 64-bit integer from a string (SHA-256, never Python's salted hash())."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def _rng(seed: int, name: str) -> np.random.Generator:
    """The Generator of one named random stream."""
    return np.random.default_rng([seed, _digest(name)])


def _ar1(shocks: np.ndarray, phi: float, sd: float, start: float) -> np.ndarray:
    """A stationary AR(1) with coefficient `phi` and sd `sd`, whose value before shocks[0] is sd*start."""
    b = [sd * math.sqrt(1.0 - phi * phi)]
    out, _ = lfilter(b, [1.0, -phi], shocks, zi=[phi * sd * start])
    return out


@lru_cache(maxsize=1)
def _session_table() -> tuple[np.ndarray, np.ndarray]:
    """ISO strings and datetime64 days of the NYSE sessions the sample market serves."""
    iso = calendar.sessions(EPOCH, dt.date(2100, 1, 1))[:HORIZON]
    return np.array(iso, dtype=object), np.array(iso, dtype="datetime64[D]")


def sector_of(symbol: str) -> str:
    """The symbol's sector: the universe's, else one picked from a digest of the symbol."""
    listing = DEFAULT_UNIVERSE.get(symbol)
    if listing is not None:
        return listing.sector
    return _SECTORS[_digest("sector:" + symbol) % len(_SECTORS)]


def _listing(symbol: str) -> dict[str, str]:
    """The metadata row of a symbol (name, sector, industry, exchange, currency)."""
    listing = DEFAULT_UNIVERSE.get(symbol)
    if listing is not None:
        name, sector, industry = listing
    else:
        sector = sector_of(symbol)
        industries = _INDUSTRIES[sector]
        industry = industries[_digest("industry:" + symbol) % len(industries)]
        name = f"{symbol} Sample Corp."
    exchange = "NASDAQ" if _digest("exchange:" + symbol) % 5 < 2 else "NYSE"
    return {
        "symbol": symbol,
        "name": name,
        "sector": sector,
        "industry": industry,
        "exchange": exchange,
        "currency": "USD",
    }


@lru_cache(maxsize=64)
def _factor(seed: int, name: str) -> np.ndarray:
    """A common factor's daily returns (market or one sector), with stochastic volatility."""
    rng = _rng(seed, "factor:" + name)
    base_vol = 0.009 if name == "market" else rng.uniform(0.004, 0.008)
    log_vol = _ar1(rng.standard_normal(HORIZON), _VOL_PHI, _VOL_SD, rng.standard_normal())
    return base_vol * np.exp(log_vol) * rng.standard_normal(HORIZON)


@lru_cache(maxsize=1)
def _quarter_ends() -> tuple[np.ndarray, np.ndarray]:
    """Calendar quarter ends from 2000Q1 and the index of the last session on or before each."""
    period_end = pd.date_range("2000-03-31", periods=_N_QUARTERS, freq="QE").to_numpy().astype("datetime64[D]")
    return period_end, np.searchsorted(_session_table()[1], period_end, side="right") - 1


@dataclass(frozen=True)
class _Path:
    """One symbol's simulated history over the calendar's sessions (prices in integer cents)."""

    open_c: np.ndarray
    high_c: np.ndarray
    low_c: np.ndarray
    close_c: np.ndarray
    volume: np.ndarray
    split_idx: np.ndarray
    split_ratio: np.ndarray
    div_idx: np.ndarray
    div_amount: np.ndarray
    fund_period_end: np.ndarray  # datetime64[D]
    fund_available_idx: np.ndarray
    fund_values: dict[str, np.ndarray]


def _to_cents(x: np.ndarray) -> np.ndarray:
    """Prices to whole cents, at least one cent, within int32."""
    return np.clip(np.rint(x * 100.0), 1, _MAX_CENTS)


@dataclass(frozen=True)
class RegimeShift:
    """From `start` on: volatility times `volatility_multiplier`, drift plus `drift_change` (daily log
    return), and the planted effect set to `planted_effect` when it is not None."""

    start: dt.date
    volatility_multiplier: float = 1.0
    drift_change: float = 0.0
    planted_effect: float | None = None

    def __post_init__(self) -> None:
        numbers = {"volatility_multiplier": self.volatility_multiplier, "drift_change": self.drift_change}
        if self.planted_effect is not None:
            numbers["planted_effect"] = self.planted_effect
        for name, value in numbers.items():
            if not math.isfinite(float(value)):
                raise ValueError(f"regime_shift.{name} must be finite, got {value!r}")
        if not 0 < self.volatility_multiplier <= 10:
            raise ValueError(f"regime_shift.volatility_multiplier must be in (0, 10], got {self.volatility_multiplier}")
        if abs(self.drift_change) > 0.01:
            raise ValueError(f"regime_shift.drift_change is a daily log return, |x| <= 0.01, got {self.drift_change}")
        if self.planted_effect is not None and not 0 <= self.planted_effect <= 5:
            raise ValueError(f"regime_shift.planted_effect must be in [0, 5], got {self.planted_effect}")


def _apply_shift(
    shift: RegimeShift,
    days: np.ndarray,
    r: np.ndarray,
    sigma: np.ndarray,
    eps: np.ndarray,
    s: np.ndarray,
    planted_effect: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (factor part `r` plus idiosyncratic and planted parts) and sigma, changed from the shift on."""
    start = int(np.searchsorted(days, np.datetime64(shift.start, "D"), side="left"))
    scale = np.ones(HORIZON)
    scale[start:] = shift.volatility_multiplier
    sigma = sigma * scale
    effect = np.full(HORIZON, planted_effect)
    if shift.planted_effect is not None:
        effect[start:] = shift.planted_effect
    r = MU + scale * (r - MU) + sigma * eps
    r[1:] += effect[1:] * sigma[:-1] * s[:-1]
    r[start:] += shift.drift_change
    return r, sigma


@lru_cache(maxsize=CACHE_SIZE)
def _path(seed: int, planted_effect: float, symbol: str, shift: RegimeShift | None = None) -> _Path:
    """Simulate one symbol over HORIZON sessions from the epoch; a pure function of its arguments."""
    iso, days = _session_table()
    n_served = len(iso)
    H = HORIZON

    # Static per-symbol parameters, from their own stream.
    p = _rng(seed, "params:" + symbol)
    p0 = math.exp(p.uniform(math.log(15.0), math.log(150.0)))
    idio_vol = math.exp(p.uniform(math.log(0.008), math.log(0.02)))
    beta_m = p.uniform(0.6, 1.4)
    beta_s = p.uniform(0.4, 1.0)
    shares0 = math.exp(p.uniform(math.log(2e8), math.log(5e9)))
    turnover = math.exp(p.uniform(math.log(0.003), math.log(0.012)))
    pays = p.uniform() < 0.75
    annual_yield = p.uniform(0.005, 0.04)
    splits_ever = p.uniform() < 0.9
    split_threshold = p.uniform(400.0, 600.0)
    first_ex = int(p.integers(0, 63))
    price_to_book = math.exp(p.uniform(math.log(1.2), math.log(8.0)))
    price_to_sales = math.exp(p.uniform(math.log(1.0), math.log(8.0)))
    margin = p.uniform(0.03, 0.25)
    share_growth = p.uniform(-0.01, 0.01)

    # Daily draws, all of fixed length, from the path stream.
    g = _rng(seed, "path:" + symbol)
    h = _ar1(g.standard_normal(H), _VOL_PHI, _VOL_SD, g.standard_normal())
    eps = g.standard_t(_T_DOF, H) / math.sqrt(_T_DOF / (_T_DOF - 2.0))
    s = _ar1(g.standard_normal(H), SIGNAL_PHI, 1.0, g.standard_normal())
    gap_noise = g.standard_normal(H)
    high_noise = np.abs(g.standard_normal(H))
    low_noise = np.abs(g.standard_normal(H))
    volume_noise = g.standard_normal(H)
    ex_gaps = g.integers(60, 67, _N_DIVIDENDS)
    yield_noise = g.standard_normal(_N_DIVIDENDS)
    split_ratios = g.choice(np.array([2.0, 3.0, 4.0]), size=_MAX_SPLITS, p=[0.6, 0.25, 0.15])
    report_lags = g.integers(30, 46, _N_QUARTERS)
    revenue_noise = g.standard_normal(_N_QUARTERS)
    margin_noise = g.standard_normal(_N_QUARTERS)
    book_noise = g.standard_normal(_N_QUARTERS)

    sigma = idio_vol * np.exp(h)
    r = MU + beta_m * _factor(seed, "market") + beta_s * _factor(seed, "sector:" + sector_of(symbol))
    if shift is None:
        r = r + sigma * eps
        if planted_effect:
            r[1:] += planted_effect * sigma[:-1] * s[:-1]
    else:
        r, sigma = _apply_shift(shift, days, r, sigma, eps, s, planted_effect)
    r = np.clip(r, -0.4, 0.4)

    # Dividends: a yield fraction of the previous close, paid on ex-dates about a quarter apart.
    ex_idx = first_ex + np.concatenate([[0], np.cumsum(ex_gaps[:-1])])
    ex_idx = ex_idx[ex_idx < H] if pays else ex_idx[:0]
    y = np.zeros(H)
    y[ex_idx] = annual_yield / 4.0 * np.exp(0.1 * yield_noise[: len(ex_idx)])

    econ = p0 * np.cumprod(np.exp(r) - y)  # price in original (pre-split) shares
    econ_prev = np.concatenate([[p0], econ[:-1]])

    # Splits: the session after the traded close first exceeds the threshold; a 1-for-10 reverse split
    # the session after it first falls below REVERSE_SPLIT_FLOOR, as a listed company keeps its price up.
    factor = np.ones(H)
    split_idx: list[int] = []
    ratios: list[float] = []
    current, pos = 1.0, 0
    is_ex = np.zeros(H, dtype=bool)
    is_ex[ex_idx] = True
    while len(split_idx) < _MAX_SPLITS:
        traded = econ[pos:] / current
        trigger = (traded < REVERSE_SPLIT_FLOOR) | ((traded > split_threshold) & splits_ever)
        if not trigger.any():
            break
        first = pos + int(trigger.argmax())
        day = first + 1
        if day < H and is_ex[day]:
            day += 1
        if day >= H:
            break
        ratio = (
            REVERSE_SPLIT_RATIO if econ[first] / current < REVERSE_SPLIT_FLOOR else float(split_ratios[len(split_idx)])
        )
        current *= ratio
        factor[day:] = current
        split_idx.append(day)
        ratios.append(ratio)
        pos = day

    gap = 0.4 * r + 0.3 * sigma * gap_noise
    close = econ / factor
    open_ = econ_prev * (np.exp(gap) - y) / factor
    high = np.maximum(open_, close) * np.exp(0.6 * sigma * high_noise)
    low = np.minimum(open_, close) * np.exp(-0.6 * sigma * low_noise)
    open_c = _to_cents(open_)
    close_c = _to_cents(close)
    high_c = np.maximum(np.maximum(_to_cents(high), open_c), close_c)
    low_c = np.minimum(np.minimum(_to_cents(low), open_c), close_c)

    log_volume = (
        math.log(shares0 * turnover) + VOLUME_SIGNAL_LOADING * s + 0.3 * h + 0.15 * np.abs(eps) + 0.3 * volume_noise
    )
    volume = np.floor(np.exp(log_volume) * factor).astype(np.int64)

    amounts = np.round(y[ex_idx] * econ_prev[ex_idx] / factor[ex_idx], 4)
    keep = amounts > 0
    div_idx, div_amount = ex_idx[keep], amounts[keep]

    # Fundamentals per calendar quarter end.
    period_end, pe_idx = _quarter_ends()
    available_idx = np.searchsorted(days, period_end + report_lags.astype("timedelta64[D]"), side="left")
    served = available_idx < n_served
    period_end, available_idx, pe_idx = period_end[served], available_idx[served], pe_idx[served]
    q = np.arange(len(pe_idx))
    window = 63
    cum = np.concatenate([[0.0], np.cumsum(econ)])
    first = np.maximum(pe_idx - window + 1, 0)
    avg_econ = (cum[pe_idx + 1] - cum[first]) / (pe_idx + 1 - first)
    base_shares = shares0 * np.exp(share_growth * q)
    shares = np.rint(base_shares * factor[pe_idx]).astype(np.int64)
    market_cap = avg_econ * base_shares
    revenue = np.rint(market_cap / price_to_sales / 4.0 * np.exp(0.05 * revenue_noise[q]))
    net_income = np.rint(revenue * (margin + 0.04 * margin_noise[q]))
    eps_q = np.round(net_income / shares, 4)
    bvps = np.round(avg_econ / factor[pe_idx] / price_to_book * np.exp(0.05 * book_noise[q]), 4)

    n = n_served
    return _Path(
        open_c=open_c[:n].astype(np.int32),
        high_c=high_c[:n].astype(np.int32),
        low_c=low_c[:n].astype(np.int32),
        close_c=close_c[:n].astype(np.int32),
        volume=volume[:n],
        split_idx=np.array(split_idx, dtype=np.int64),
        split_ratio=np.array(ratios, dtype=np.float64),
        div_idx=div_idx,
        div_amount=div_amount,
        fund_period_end=period_end,
        fund_available_idx=available_idx,
        fund_values={
            "revenue": revenue,
            "net_income": net_income,
            "eps": eps_q,
            "book_value_per_share": bvps,
            "shares_outstanding": shares,
        },
    )


def _frame(columns: list[str], data: dict[str, np.ndarray]) -> pd.DataFrame:
    """A frame with exactly `columns`, in order."""
    return pd.DataFrame({c: data[c] for c in columns}, columns=columns)


def _events(
    symbols: list[str], paths: list[_Path], lo: int, hi: int, kind: str
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Symbols, session indices and values of the splits or dividends within sessions [lo, hi)."""
    out_symbols: list[str] = []
    idx_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    for symbol, path in zip(symbols, paths, strict=True):
        idx, values = (path.split_idx, path.split_ratio) if kind == "split" else (path.div_idx, path.div_amount)
        inside = (idx >= lo) & (idx < hi)
        out_symbols.extend([symbol] * int(inside.sum()))
        idx_parts.append(idx[inside])
        value_parts.append(values[inside])
    idx_all = np.concatenate(idx_parts) if idx_parts else np.zeros(0, dtype=np.int64)
    values_all = np.concatenate(value_parts) if value_parts else np.zeros(0)
    return out_symbols, idx_all.astype(np.int64), values_all.astype(np.float64)


class SampleSource:
    """The synthetic market; `fetch` never touches the network and never raises SourceUnavailable."""

    name = "sample"

    def __init__(self, seed: int = 7, planted_effect: float = 0.0, regime_shift: RegimeShift | None = None) -> None:
        """A market for `seed` with a planted effect of strength `planted_effect` (>= 0), optionally shifted."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        effect = float(planted_effect)
        if not math.isfinite(effect) or effect < 0:
            raise ValueError(f"planted_effect must be a finite number >= 0, got {planted_effect!r}")
        self.seed = int(seed)
        self.planted_effect = effect
        self.regime_shift = regime_shift

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> MarketDataBatch:
        """Bars, splits, dividends, fundamentals and metadata for `symbols` over [start, end]."""
        first, last = calendar.as_date(start), calendar.as_date(end)
        if first < EPOCH:
            raise ValueError(f"the sample market starts on {EPOCH.isoformat()}; cannot serve from {first.isoformat()}")
        failures: dict[str, str] = {}
        served: list[str] = []
        for symbol in symbols:
            if not isinstance(symbol, str) or not symbol.strip() or symbol != symbol.strip():
                failures[str(symbol)] = f"not a valid symbol: {symbol!r}"
            elif symbol not in served:
                served.append(symbol)
        served.sort()

        iso, days = _session_table()
        lo = int(np.searchsorted(days, np.datetime64(first, "D"), side="left"))
        hi = int(np.searchsorted(days, np.datetime64(last, "D"), side="right"))
        hi = max(hi, lo)
        paths = [_path(self.seed, self.planted_effect, symbol, self.regime_shift) for symbol in served]
        n = hi - lo

        bars = _frame(
            BAR_COLUMNS,
            {
                "symbol": np.repeat(np.array(served, dtype=object), n),
                "date": np.tile(iso[lo:hi], len(served)),
                "open": _cents_column(paths, "open_c", lo, hi),
                "high": _cents_column(paths, "high_c", lo, hi),
                "low": _cents_column(paths, "low_c", lo, hi),
                "close": _cents_column(paths, "close_c", lo, hi),
                "volume": np.concatenate([p.volume[lo:hi] for p in paths] or [np.zeros(0, np.int64)]),
            },
        )

        split_symbols, split_idx, split_ratio = _events(served, paths, lo, hi, "split")
        splits = _frame(
            SPLIT_COLUMNS,
            {"symbol": np.array(split_symbols, dtype=object), "date": iso[split_idx], "ratio": split_ratio},
        )
        div_symbols, div_idx, div_amount = _events(served, paths, lo, hi, "dividend")
        dividends = _frame(
            DIVIDEND_COLUMNS,
            {"symbol": np.array(div_symbols, dtype=object), "ex_date": iso[div_idx], "amount": div_amount},
        )

        return MarketDataBatch(
            bars=bars,
            splits=splits,
            dividends=dividends,
            fundamentals=_fundamentals(served, paths, first, last),
            metadata=pd.DataFrame([_listing(s) for s in served], columns=METADATA_COLUMNS),
            failures=failures,
        )


def _cents_column(paths: list[_Path], attr: str, lo: int, hi: int) -> np.ndarray:
    """A price column in dollars from the cached integer cents of each path."""
    parts = [getattr(p, attr)[lo:hi] for p in paths]
    return np.concatenate(parts).astype(np.float64) / 100.0 if parts else np.zeros(0)


def _fundamentals(symbols: list[str], paths: list[_Path], first: dt.date, last: dt.date) -> pd.DataFrame:
    """Quarters with available_date <= last and period_end >= first - FUNDAMENTAL_CONTEXT_DAYS."""
    iso, days = _session_table()
    earliest = np.datetime64(first - dt.timedelta(days=FUNDAMENTAL_CONTEXT_DAYS), "D")
    latest = np.datetime64(last, "D")
    parts: dict[str, list[np.ndarray]] = {c: [] for c in FUNDAMENTAL_COLUMNS}
    for symbol, path in zip(symbols, paths, strict=True):
        keep = (days[path.fund_available_idx] <= latest) & (path.fund_period_end >= earliest)
        count = int(keep.sum())
        parts["symbol"].append(np.array([symbol] * count, dtype=object))
        parts["period_end"].append(np.datetime_as_string(path.fund_period_end[keep], unit="D").astype(object))
        parts["available_date"].append(iso[path.fund_available_idx[keep]])
        for column, values in path.fund_values.items():
            parts[column].append(values[keep])
    if not symbols:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in FUNDAMENTAL_COLUMNS})
    return _frame(FUNDAMENTAL_COLUMNS, {c: np.concatenate(v) for c, v in parts.items()})
