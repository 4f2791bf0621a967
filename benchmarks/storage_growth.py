"""Measure how much TURBOMODE_HOME grows per night on the shipped 83-symbol config with the sample source.

    python benchmarks/storage_growth.py [--nights 21] [--date D] [--home DIR] [--keep-home]
                                        [--out benchmarks/results/storage_growth.json]

Night 1 loads the shipped history (from `history.start_date`) into a fresh home; nights 2..K are the
following sessions, one `turbomode nightly --date` each, as a deployment runs them. For every night it
records the bytes added under the home by folder (`models/`, each `assets/<asset>/`, each database with
its WAL, `dagster_home/`), split into model artifacts (`models/`) and everything else, and after the
last night the growth over nights 2..K against the goal: under 10 MB a night beyond the model
artifacts, which this project takes to be `models/` and the out-of-fold predictions the run's
meta-learner was fitted on (`assets/oof_predictions`); the growth beyond `models/` alone is reported
beside it. The issue's measurement is `--nights 21` (night 1, then 20 more; about 30 minutes at 90 s a
night); the default of 3 is a quick check. Runs and measures with `nightly_runner`, as `nightly_scale.py`.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from nightly_runner import (
    MB,
    RESULTS,
    BenchHome,
    NightMeasure,
    add_night_arguments,
    machine,
    markdown_table,
    max_rss_bytes,
    mb,
    night_sessions,
    run_nights,
    write_config,
    write_results,
)

GOAL_BYTES_PER_NIGHT = 10 * MB  # beyond model artifacts, at 83 symbols (issue 12)
MODELS = "models"
OOF = "assets/oof_predictions"  # the training run's walk-forward record, counted with its model
DATABASES = ("market_data.db", "turbomode.db")


def split_growth(added: dict[str, int]) -> dict[str, int]:
    """Bytes added by one night, in the table's columns: models, assets, each database, dagster_home, other;
    `beyond_models` is everything but models, `beyond_training` everything but models and the out-of-fold file."""
    assets = sum(v for k, v in added.items() if k == "assets" or k.startswith("assets/"))
    named = {MODELS: added.get(MODELS, 0), "assets": assets}
    named.update({db: added.get(db, 0) for db in DATABASES})
    named["dagster_home"] = added.get("dagster_home", 0)
    named["other"] = sum(added.values()) - sum(named.values())
    named["beyond_models"] = sum(added.values()) - named[MODELS]
    named["beyond_training"] = named["beyond_models"] - added.get(OOF, 0)
    named["total"] = sum(added.values())
    return named


def steady_state(nights: list[NightMeasure]) -> dict:
    """Growth over nights 2..K (after the first night's history load), and the goal's verdict."""
    later = [split_growth(night.bytes_added) for night in nights[1:]]
    if not later:
        return {"nights": 0}
    beyond = sum(n["beyond_models"] for n in later)
    per_night = beyond / len(later)
    per_night_training = sum(n["beyond_training"] for n in later) / len(later)
    return {
        "nights": len(later),
        "models_bytes": sum(n[MODELS] for n in later),
        "beyond_models_bytes": beyond,
        "beyond_models_bytes_per_night": round(per_night),
        "max_beyond_models_bytes_one_night": max(n["beyond_models"] for n in later),
        "beyond_training_artifacts_bytes_per_night": round(per_night_training),
        "goal_bytes_per_night": GOAL_BYTES_PER_NIGHT,
        "goal_met": per_night_training < GOAL_BYTES_PER_NIGHT,
        "goal_met_beyond_models_alone": per_night < GOAL_BYTES_PER_NIGHT,
    }


def growth_table(nights: list[NightMeasure]) -> str:
    """One row per night: MB added by group, beyond models, and the home's size after it."""
    columns = [MODELS, "assets", *DATABASES, "dagster_home", "other"]
    header = [
        "night", "session", *(f"{c} + MB" for c in columns), "beyond models + MB", "total + MB", "home MB", "s",
    ]  # fmt: skip
    rows = []
    for number, night in enumerate(nights, start=1):
        growth = split_growth(night.bytes_added)
        rows.append(
            [
                str(number) + ("" if night.exit_code == 0 else " FAILED"),
                night.session,
                *(mb(growth[c]) for c in columns),
                mb(growth["beyond_models"]),
                mb(growth["total"]),
                mb(sum(night.sizes_after.values())),
                f"{night.wall_s:.0f}",
            ]
        )
    return markdown_table(header, rows)


def verdict(summary: dict) -> str:
    """The steady state in one line, for the README."""
    if not summary["nights"]:
        return "one night only: run --nights 2 or more to measure the growth per night"
    met = "met" if summary["goal_met"] else "NOT met"
    met_with_oof = "met" if summary["goal_met_beyond_models_alone"] else "NOT met"
    return (
        f"after {summary['nights']} more night(s): models + {mb(summary['models_bytes'])} MB, everything else "
        f"+ {mb(summary['beyond_models_bytes'])} MB, {mb(summary['beyond_models_bytes_per_night'])} MB a night "
        f"(most in one night {mb(summary['max_beyond_models_bytes_one_night'])} MB); goal under "
        f"{mb(summary['goal_bytes_per_night'])} MB a night beyond model artifacts (models/ and the out-of-fold "
        f"predictions): {mb(summary['beyond_training_artifacts_bytes_per_night'])} MB, {met}; "
        f"beyond models/ alone: {met_with_oof}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=3, help="nights in all, the first loading history (21: issue)")
    add_night_arguments(parser)
    parser.add_argument("--out", type=Path, default=RESULTS / "storage_growth.json", help="JSON output")
    args = parser.parse_args(argv)
    try:
        sessions = night_sessions(args.date, args.nights, dt.datetime.now(dt.timezone.utc))
    except ValueError as exc:
        parser.error(str(exc))
    with BenchHome(args.home, keep=args.keep_home) as bench:
        write_config(bench.config, {"sources.order": ["sample"]})
        fresh = bench.fresh
        nights = list(run_nights(sessions, bench.home, bench.config, max_rss_bytes(args)))
    summary = steady_state(nights)
    document = {
        "benchmark": "storage_growth",
        "config": "shipped (83 symbols, shipped history.start_date), sources.order ['sample']",
        "fresh_home": fresh,
        "machine": machine(),
        "steady_state": summary,
        "per_night": [{"session": n.session, **split_growth(n.bytes_added)} for n in nights],
        "nights": [night.as_json() for night in nights],
    }
    write_results(args.out, document)
    print()
    print(growth_table(nights))
    print()
    print(verdict(summary))
    return 0 if len(nights) == len(sessions) and all(n.exit_code == 0 for n in nights) else 1


if __name__ == "__main__":
    raise SystemExit(main())
