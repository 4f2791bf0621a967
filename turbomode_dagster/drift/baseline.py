"""The drift baseline stored with a model version: what its training window looked like.

Per feature and per prediction column (the ensemble's out-of-fold p_buy and p_sell): reference
quantile edges and counts, a seeded sample of values for KS, and calibrated alert levels; the level of
the volatility-regime check (see `volatility`); plus the out-of-fold class mix (mean probability per
class) and out-of-sample skill (rank IC with its Newey-West standard error, log loss), which matured
predictions are later held against.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from turbomode_dagster.drift.binning import bin_counts, quantile_edges
from turbomode_dagster.drift.calibration import FLOORS, Thresholds, calibrate
from turbomode_dagster.drift.volatility import VolatilityReference, calibrate_volatility, session_dispersion
from turbomode_dagster.models import PROBA_COLUMNS

SAMPLE_SIZE = 5_000
# Features in price units (TA-Lib's MACD, ATR and Bollinger bands) drift with the price level by
# construction, so every window after training looks "shifted"; their scale-free twins
# (macd_to_close, atr_14_to_close, bb_width_20, bb_pct_b_20) are monitored instead.
PRICE_UNIT_FEATURES = frozenset(
    {"macd", "macd_signal", "macd_hist", "atr_14", "bb_upper_20", "bb_middle_20", "bb_lower_20"}
)
PREDICTION_COLUMNS = ("p_buy", "p_sell")
FORMAT = 3  # 2: the volatility-regime check; 3: KS samples packed (see `pack_sample`)
SAMPLE_DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class Reference:
    """One column's reference distribution and its alert levels."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    sample: tuple[float, ...]
    thresholds: Thresholds

    def to_dict(self) -> dict:
        """The stored form: edges, counts and levels as JSON numbers, the KS sample packed."""
        return {**asdict(self), "sample": pack_sample(self.sample)}

    @classmethod
    def from_dict(cls, raw: dict) -> Reference:
        return cls(
            edges=tuple(raw["edges"]),
            counts=tuple(raw["counts"]),
            sample=unpack_sample(raw["sample"]),
            thresholds=Thresholds(**raw["thresholds"]),
        )


def pack_sample(sample: tuple[float, ...] | np.ndarray) -> str:
    """A KS sample as base64 of zlib-compressed float32 little-endian bytes, byte planes shuffled.

    JSON floats cost about 19 bytes a value and made a baseline ~4 MB; float32 keeps ~7 significant
    digits (enough for a KS statistic, whose steps are 1/5,000), and grouping the bytes of equal
    significance (the sample is sorted, so sign and exponent bytes repeat) lets zlib shrink it further.
    """
    values = np.asarray(sample, dtype=SAMPLE_DTYPE)
    planes = values.view(np.uint8).reshape(-1, SAMPLE_DTYPE.itemsize).T
    return base64.b64encode(zlib.compress(planes.tobytes(), 9)).decode("ascii")


def unpack_sample(packed: str) -> tuple[float, ...]:
    """The values `pack_sample` stored, as Python floats (the float32 values, exactly)."""
    planes = np.frombuffer(zlib.decompress(base64.b64decode(packed, validate=True)), dtype=np.uint8)
    if planes.size % SAMPLE_DTYPE.itemsize:
        raise ValueError(f"drift baseline sample of {planes.size} bytes is not whole float32 values")
    values = planes.reshape(SAMPLE_DTYPE.itemsize, -1).T.copy().view(SAMPLE_DTYPE).ravel()
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class DriftBaseline:
    """Everything drift monitoring compares a current window with, for one model version."""

    model_version: str
    window_sessions: int
    period: tuple[str, str]
    features: dict[str, Reference]
    predictions: dict[str, Reference]
    class_mix: dict[str, float]
    volatility: VolatilityReference
    skill: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), so the same training gives the same bytes; samples packed."""
        stored = {
            "format": FORMAT,
            **asdict(self),
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "predictions": {k: v.to_dict() for k, v in self.predictions.items()},
        }
        return json.dumps(stored, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> DriftBaseline:
        raw = json.loads(text)
        if raw.pop("format", None) != FORMAT:
            raise ValueError("unknown drift baseline format: retrain the model to rebuild its baseline")
        return cls(
            model_version=raw["model_version"],
            window_sessions=raw["window_sessions"],
            period=tuple(raw["period"]),
            features={k: Reference.from_dict(v) for k, v in raw["features"].items()},
            predictions={k: Reference.from_dict(v) for k, v in raw["predictions"].items()},
            class_mix=raw["class_mix"],
            volatility=VolatilityReference(**raw["volatility"]),
            skill=raw["skill"],
        )


def reference_of(
    values: np.ndarray, session: np.ndarray, window: int, seed: int, floors: Thresholds = FLOORS
) -> Reference:
    """Bins, counts, KS sample and calibrated levels of one column's reference values."""
    values = np.asarray(values, dtype=np.float64)
    edges = quantile_edges(values)
    counts = bin_counts(values, edges)
    finite = values[np.isfinite(values)]
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(finite, SAMPLE_SIZE, replace=False)) if finite.size > SAMPLE_SIZE else np.sort(finite)
    sample = sample.astype(SAMPLE_DTYPE).astype(np.float64)  # as stored, so levels are calibrated on what KS sees
    thresholds = calibrate(values, session, edges, counts, sample, window, floors)
    return Reference(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        sample=tuple(float(v) for v in sample),
        thresholds=thresholds,
    )


def monitored_features(columns: list[str] | tuple[str, ...]) -> list[str]:
    """The model's features that drift monitoring judges: all but those in price units."""
    return [c for c in columns if c not in PRICE_UNIT_FEATURES]


def build_baseline(
    model_version: str,
    features: pd.DataFrame,
    feature_columns: list[str] | tuple[str, ...],
    oof_ensemble: pd.DataFrame,
    skill: dict[str, float],
    window_sessions: int,
    seed: int,
) -> DriftBaseline:
    """The baseline of a model trained on `features` (with `date`, `symbol` and `ret_1d`) and scored out of fold."""
    session = _session_numbers(features["date"])
    oof_session = _session_numbers(oof_ensemble["date"])
    dates = pd.to_datetime(features["date"])
    return DriftBaseline(
        model_version=model_version,
        window_sessions=window_sessions,
        period=(dates.min().strftime("%Y-%m-%d"), dates.max().strftime("%Y-%m-%d")),
        features={
            column: reference_of(features[column].to_numpy(), session, window_sessions, seed)
            for column in feature_columns
        },
        predictions={
            column: reference_of(oof_ensemble[column].to_numpy(), oof_session, window_sessions, seed)
            for column in PREDICTION_COLUMNS
        },
        class_mix={column: float(oof_ensemble[column].mean()) for column in PROBA_COLUMNS},
        volatility=calibrate_volatility(session_dispersion(features)),
        skill={key: float(value) for key, value in skill.items()},
    )


def _session_numbers(dates: pd.Series) -> np.ndarray:
    """Each row's session as 0..n-1 in date order."""
    return np.unique(pd.to_datetime(dates).to_numpy(), return_inverse=True)[1].astype(np.int64)
