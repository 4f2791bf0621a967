"""Model identity, artifacts and promotion: deterministic versions, reproducible files, one champion.

A model version hashes the training data's fingerprint, the training recipe and the code version,
so retraining on identical inputs yields the same version, the same artifact bytes (fixed seeds,
deterministic learners) and an upsert instead of a new registry row. Artifacts live under
`<home>/models/<model_version>/` in each library's own format: XGBoost's `save_model` JSON, joblib
for scikit-learn pipelines, the meta-learner's coefficients as JSON, and a sorted-key manifest.json.

Promotion rule: a challenger becomes champion only if its out-of-sample log loss beats the
class-prior baseline's (on the same rows) and is not worse than the current champion's recorded
out-of-sample log loss. The decision and its numbers are stored; the old champion is retired in the
same transaction, and a unique index keeps one champion at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import xgboost as xgb

from turbomode_dagster.models import CLASS_LABELS
from turbomode_dagster.models.ensemble import ENSEMBLE, EnsembleResult, FittedEnsemble, MetaLearner
from turbomode_dagster.models.learners import LearnerSpec, is_xgboost
from turbomode_dagster.models.metrics import CLASS_PRIOR
from turbomode_dagster.storage.atomic import atomic_write
from turbomode_dagster.storage.turbomode_db import CHALLENGER, ModelRecord, TurboModeDB

MODELS_DIR = "models"
MANIFEST = "manifest.json"
META_FILE = "meta.json"
ARTIFACT_FORMAT = 1
VERSION_PREFIX = "tm-"
VERSION_HEX = 12
MIN_IC_T = 2.0  # the ensemble's rank IC must exceed this many standard errors to be promoted


def data_fingerprint(samples: pd.DataFrame) -> str:
    """sha256 over the samples sorted by (symbol, date) with sorted columns: row order cannot matter.

    The digest is that of `hash_pandas_object` over the sorted frame, computed a column at a time so
    the frame is never copied whole (at 3,000 symbols a copy is about 2 GB).
    """
    order = _symbol_date_order(samples)
    columns = sorted(samples.columns)
    values = {c: _canonical_column(samples[c]) for c in columns}
    digest = hashlib.sha256(_canonical([[c, str(values[c].dtype)] for c in columns]).encode())
    row_hashes = np.full(len(samples), 0x345678, dtype=np.uint64)
    multiplier = np.uint64(1_000_003)
    for i, column in enumerate(columns):  # pandas' combine_hash_arrays (CPython's tuple hash), column by column
        sorted_column = values[column] if order is None else values[column].take(order)
        row_hashes ^= pd.util.hash_pandas_object(sorted_column, index=False).to_numpy()
        row_hashes *= multiplier
        multiplier += np.uint64(82_520 + 2 * (len(columns) - i))
    row_hashes += np.uint64(97_531)
    digest.update(row_hashes.tobytes())
    return digest.hexdigest()


def _symbol_date_order(samples: pd.DataFrame) -> np.ndarray | None:
    """Row positions in stable (symbol, date) order, or None when the rows are in that order already."""
    symbols = pd.factorize(samples["symbol"], sort=True)[0]
    dates = pd.to_datetime(samples["date"]).to_numpy(dtype="datetime64[ns]")
    same_symbol = symbols[1:] == symbols[:-1]
    if (np.diff(symbols) >= 0).all() and (dates[1:][same_symbol] >= dates[:-1][same_symbol]).all():
        return None
    return np.lexsort((dates, symbols))


def _canonical_column(column: pd.Series) -> pd.Series:
    """A column as it is hashed: datetimes at nanosecond resolution, so a unit change is no data change."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.astype("datetime64[ns]")
    return column


def model_version(data_fingerprint: str, config: dict[str, Any], code_version: str) -> str:
    """ "tm-" plus 12 hex digits of sha256 over canonical JSON of data, recipe and code version."""
    payload = _canonical({"code_version": code_version, "config": config, "data_fingerprint": data_fingerprint})
    return VERSION_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:VERSION_HEX]


def artifact_dir(home: Path, version: str) -> Path:
    """Where a model version's artifacts live under TURBOMODE_HOME."""
    return home / MODELS_DIR / version


def save_ensemble(ensemble: FittedEnsemble, directory: Path, version: str) -> Path:
    """Write the ensemble's artifacts and manifest into `directory`; return the manifest's path."""
    (directory / "base").mkdir(parents=True, exist_ok=True)
    learners = []
    for spec in ensemble.specs:
        model = ensemble.base_models[spec.name]
        relative = f"base/{spec.name}.json" if is_xgboost(model) else f"base/{spec.name}.joblib"
        atomic_write(directory / relative, lambda path, m=model: _save_base(m, path))
        learners.append({**spec.to_dict(), "artifact": relative, "sha256": _sha256(directory / relative)})
    meta = {"coef": ensemble.meta.coef.tolist(), "intercept": ensemble.meta.intercept.tolist()}
    atomic_write(directory / META_FILE, lambda path: path.write_text(_pretty(meta)))
    manifest = {
        "format": ARTIFACT_FORMAT,
        "model_version": version,
        "classes": list(CLASS_LABELS),
        "feature_names": list(ensemble.feature_names),
        "horizon": ensemble.horizon,
        "seed": ensemble.seed,
        "learners": learners,
        "meta": {"artifact": META_FILE, "sha256": _sha256(directory / META_FILE)},
    }
    atomic_write(directory / MANIFEST, lambda path: path.write_text(_pretty(manifest)))
    return directory / MANIFEST


def load_ensemble(directory: Path) -> FittedEnsemble:
    """Rebuild a FittedEnsemble from its artifacts, checking each file against the manifest's hash."""
    manifest = json.loads((directory / MANIFEST).read_text())
    if manifest["format"] != ARTIFACT_FORMAT:
        raise ValueError(f"{directory}: artifact format {manifest['format']} is not {ARTIFACT_FORMAT}")
    specs, models = [], {}
    for entry in manifest["learners"]:
        path = directory / entry["artifact"]
        _check_hash(path, entry["sha256"])
        spec = LearnerSpec.from_dict(entry)
        specs.append(spec)
        models[spec.name] = _load_base(spec, path)
    _check_hash(directory / META_FILE, manifest["meta"]["sha256"])
    meta = json.loads((directory / META_FILE).read_text())
    return FittedEnsemble(
        specs=tuple(specs),
        feature_names=tuple(manifest["feature_names"]),
        base_models=models,
        meta=MetaLearner(np.array(meta["coef"], dtype=np.float64), np.array(meta["intercept"], dtype=np.float64)),
        horizon=manifest["horizon"],
        seed=manifest["seed"],
    )


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate becomes champion, why, and the numbers the rule compared."""

    model_version: str
    promote: bool
    reason: str
    log_loss: float
    class_prior_log_loss: float
    champion_version: str | None
    champion_log_loss: float | None
    rank_ic: float
    rank_ic_se: float

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready data (stored in model_registry.promotion_decision)."""
        return asdict(self)


def decide_promotion(
    version: str, metrics: dict[str, dict[str, float]], champion: ModelRecord | None
) -> PromotionDecision:
    """Apply the promotion rule to a candidate's metrics (by model name) against the champion's.

    Beyond the log-loss rule, the ensemble's rank IC must be positive at MIN_IC_T Newey-West standard
    errors: volatility clustering lets a model forecast the size of a move (and so beat the class
    prior's log loss) with no idea of its direction, and such a model would emit BUY/SELL noise.
    """
    loss = _log_loss(metrics, ENSEMBLE)
    prior = _log_loss(metrics, CLASS_PRIOR)
    ic, ic_se = (float(metrics.get(ENSEMBLE, {}).get(k) or math.nan) for k in ("rank_ic", "rank_ic_se"))
    incumbent = None if champion is None else champion.model_version
    incumbent_loss = None if champion is None else _log_loss(champion.metrics, ENSEMBLE)

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(version, promote, reason, loss, prior, incumbent, incumbent_loss, ic, ic_se)

    if incumbent == version:
        return decision(True, "already the champion")
    if not loss < prior:
        return decision(False, f"log loss {loss:.6f} does not beat the class prior's {prior:.6f}")
    if not ic > MIN_IC_T * ic_se:
        return decision(False, f"rank IC {ic:.4f} is not above {MIN_IC_T} standard errors ({ic_se:.4f}): no direction")
    if incumbent_loss is not None and loss > incumbent_loss:
        return decision(False, f"log loss {loss:.6f} is worse than champion {incumbent}'s {incumbent_loss:.6f}")
    if incumbent is None:
        return decision(True, f"log loss {loss:.6f} beats the class prior's {prior:.6f}; no champion yet")
    return decision(True, f"log loss {loss:.6f} beats the class prior and is not worse than {incumbent_loss:.6f}")


def metrics_json(metrics: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The metrics table as {model: {metric: value}} for the registry's metrics column."""
    return {str(model): {k: float(v) for k, v in row.items()} for model, row in metrics.iterrows()}


def register_model(
    db: TurboModeDB,
    version: str,
    fingerprint: str,
    result: EnsembleResult,
    artifact_path: Path,
    created_at: str | None = None,
) -> ModelRecord | None:
    """Upsert a model version as a challenger (an existing row keeps its status and created_at)."""
    db.upsert_model(
        ModelRecord(
            model_version=version,
            created_at=created_at or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            status=CHALLENGER,
            data_fingerprint=fingerprint,
            feature_list=list(result.ensemble.feature_names),
            parameters=result.config,
            metrics=metrics_json(result.metrics),
            artifact_path=str(artifact_path),
        )
    )
    return db.model(version)


def promote(db: TurboModeDB, version: str) -> PromotionDecision:
    """Decide on a registered model and record it; a promotion retires the old champion atomically."""
    candidate = db.model(version)
    if candidate is None:
        raise KeyError(f"model {version!r} is not registered")
    decision = decide_promotion(version, candidate.metrics, db.champion())
    if decision.champion_version != version:
        db.record_decision(version, decision.to_dict(), decision.promote)
    return decision


def publish_model(
    home: Path, db: TurboModeDB, samples: pd.DataFrame, result: EnsembleResult, code_version: str
) -> tuple[ModelRecord | None, PromotionDecision]:
    """Version, save, register and judge a trained ensemble; returns the registry row and the decision."""
    fingerprint = data_fingerprint(samples)
    version = model_version(fingerprint, result.config, code_version)
    directory = artifact_dir(home, version)
    save_ensemble(result.ensemble, directory, version)
    register_model(db, version, fingerprint, result, directory)
    decision = promote(db, version)
    return db.model(version), decision


def _log_loss(metrics: dict[str, dict[str, float]], model: str) -> float:
    """A model's out-of-sample log loss from a metrics mapping (NaN when absent or null)."""
    value = metrics.get(model, {}).get("log_loss")
    return math.nan if value is None else float(value)


def _save_base(model: object, path: Path) -> None:
    """A base learner in its library's own format: XGBoost JSON or a joblib pickle."""
    if is_xgboost(model):
        model.save_model(path)
    else:
        joblib.dump(model, path)


def _load_base(spec: LearnerSpec, path: Path) -> object:
    """The inverse of `_save_base`, with XGBoost's thread count restored from the spec."""
    if path.suffix == ".json":
        model = xgb.XGBClassifier()
        model.load_model(path)
        return model.set_params(n_jobs=spec.params.get("n_jobs"))
    return joblib.load(path)


def _canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, NaN refused (it has no canonical form)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _pretty(value: Any) -> str:
    """Sorted-key, indented JSON text for artifacts people read."""
    return json.dumps(value, sort_keys=True, indent=2) + "\n"


def _sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_hash(path: Path, expected: str) -> None:
    """Refuse an artifact whose bytes differ from what the manifest recorded."""
    if _sha256(path) != expected:
        raise ValueError(f"{path}: contents do not match the manifest's sha256")
