"""Each task's own numbers, the seed's `last_results`, read from what its assets recorded for a run.

Input: the metadata values of a run's materialisations by asset key (`{"daily_bars": {"rows_written":
41500, ...}}`); output: the figures a person asks of that task (Task 1: symbols processed and candles
ingested; Task 2: model version and promotion; Task 3: signal counts; Task 4: net Sharpe; Task 5:
features alerting and the flag; Task 6: bytes reclaimed). A figure the run did not record is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Metadata = Mapping[str, Mapping[str, Any]]


def _ingestion(assets: Metadata) -> dict[str, Any]:
    bars = assets.get("daily_bars", {})
    out = {
        "symbols_processed": bars.get("symbols_ingested"),
        "candles_ingested": bars.get("rows_written"),
        "quarantined_rows": bars.get("quarantined_rows"),
    }
    if isinstance(bars.get("symbols_failed"), Mapping):
        out["symbols_failed"] = len(bars["symbols_failed"])
    return out


def _training(assets: Metadata) -> dict[str, Any]:
    model = assets.get("trained_ensemble", {})
    promotion = model.get("promotion")
    return {
        "model_version": model.get("model_version"),
        "promoted": promotion.get("promote") if isinstance(promotion, Mapping) else None,
        "model_status": model.get("status"),
        "ensemble_log_loss": model.get("ensemble_log_loss"),
    }


def _scan(assets: Metadata) -> dict[str, Any]:
    scan = assets.get("overnight_signals", {})
    counts = scan.get("signals")
    out: dict[str, Any] = {"model_version": scan.get("model_version"), "target_date": scan.get("target_date")}
    if isinstance(counts, Mapping):
        out.update({f"{label.lower()}_signals": int(counts.get(label, 0)) for label in ("BUY", "SELL", "HOLD")})
    return out


def _backtest(assets: Metadata) -> dict[str, Any]:
    report = assets.get("backtest_report", {})
    return {"net_sharpe": report.get("net_sharpe"), "chance_percentile": report.get("chance_percentile")}


def _drift(assets: Metadata) -> dict[str, Any]:
    report = assets.get("drift_report", {})
    return {"features_alerting": report.get("features_alerting"), "flag_raised": report.get("flag_raised")}


def _maintenance(assets: Metadata) -> dict[str, Any]:
    reclaimed = [_total(m["bytes_reclaimed"]) for m in assets.values() if "bytes_reclaimed" in m]
    return {"bytes_reclaimed": sum(reclaimed) if reclaimed else None}


def _total(value: Any) -> float:
    """A byte count, or the sum of a per-database / per-folder mapping of them."""
    return sum(_total(v) for v in value.values()) if isinstance(value, Mapping) else value


NUMBERS: dict[int, Callable[[Metadata], dict[str, Any]]] = {
    1: _ingestion,
    2: _training,
    3: _scan,
    4: _backtest,
    5: _drift,
    6: _maintenance,
}


def task_numbers(task_id: int, assets: Metadata) -> dict[str, Any]:
    """Task `task_id`'s figures from a run's materialisation metadata by asset; missing ones are left out."""
    return {k: v for k, v in NUMBERS[task_id](assets).items() if v is not None}
