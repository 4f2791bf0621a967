"""The tables `nightly_scale.py` and `storage_growth.py` print, and the storage goal's arithmetic."""

from __future__ import annotations

from nightly_runner import MB, NightMeasure, TaskMeasure
from nightly_scale import summary_table, task_table
from storage_growth import GOAL_BYTES_PER_NIGHT, OOF, growth_table, split_growth, steady_state, verdict


def night(session: str, before: dict[str, int], after: dict[str, int], tasks=(), exit_code: int = 0) -> NightMeasure:
    """A measured night with the figures the tables read."""
    return NightMeasure(
        session=session, command=["turbomode"], exit_code=exit_code, started=1000.0, wall_s=80.04,
        peak_rss_bytes=1_300_000_000, peak_tree_rss_bytes=1_250_000_000, sizes_before=before, sizes_after=after,
        disk_write_bytes=42_000_000, load_average_before=(1.0, 1.0, 1.0), load_average_after=(2.5, 2.0, 1.0),
        tasks=list(tasks), dagster_runs=[], rss_samples=[], output_head=[], output_tail=[], warnings=[],
    )  # fmt: skip


def task(task_id: int, function: str, wall: float, peak: int, added: dict[str, int]) -> TaskMeasure:
    """A measured task."""
    return TaskMeasure(
        task_id, function, function, started=0.0, ended=wall, ok=True, wall_s=wall, run_s=wall - 0.2,
        rss_start_bytes=300_000_000, peak_rss_bytes=peak, bytes_added=added, disk_write_bytes=2_000_000,
    )  # fmt: skip


TASKS = [
    task(1, "run_ingestion", 3.5, 400_000_000, {"market_data.db": 1_500_000}),
    task(2, "run_orchestrator", 70.0, 1_250_000_000, {"models": 2_600_000, "assets/feature_panel": 900_000}),
]


def test_the_summary_row_has_each_tasks_seconds_the_peak_and_the_task_that_raised_it_most() -> None:
    table = summary_table(500, 10, [night("2026-12-01", {"models": 5}, {"models": 5_000_005}, TASKS)])
    header, rule, row = table.splitlines()
    assert header == (
        "| symbols x years | night | session | Task 1 s | Task 2 s | other s | night s | peak RSS GB"
        " | largest rise GB (task) | home + MB | disk writes MB | load avg |"
    )
    assert (
        row == "| 500 x 10 | 1 | 2026-12-01 | 3.5 | 70.0 | 6.5 | 80.0 | 1.25 | 0.95 (Task 2) | 5.0 | 42.0 | 1.0-2.5 |"
    )
    assert rule.startswith("| --- | ---: | --- | ---: |")


def test_a_failed_night_says_so_and_shows_a_dash_for_the_tasks_it_never_ran() -> None:
    nights = [
        night("2026-11-30", {}, {}, TASKS),
        night("2026-12-01", {}, {}, TASKS[:1], exit_code=1),
    ]
    row = summary_table(3000, 10, nights).splitlines()[3]
    assert row.startswith("| 3,000 x 10 | 2 FAILED | 2026-12-01 | 3.5 | - | 76.5 | 80.0 |")


def test_the_task_table_has_a_row_per_task_of_each_night() -> None:
    rows = task_table([night("2026-12-01", {}, {}, TASKS)]).splitlines()[2:]
    assert rows == [
        "| 1 (2026-12-01) | 1 run_ingestion | 3.5 | 3.3 | 300.0 | 400.0 | 1.5 | 2.0 |",
        "| 1 (2026-12-01) | 2 run_orchestrator | 70.0 | 69.8 | 300.0 | 1,250.0 | 3.5 | 2.0 |",
    ]


def test_growth_is_split_into_models_assets_databases_and_the_rest() -> None:
    added = {
        "models": 3_000_000, "assets/feature_panel": 400_000, "assets/oof_predictions": 600_000,
        "market_data.db": 50_000, "turbomode.db": 200_000, "dagster_home": 70_000, "tmp": -20_000,
    }  # fmt: skip
    assert split_growth(added) == {
        "models": 3_000_000,
        "assets": 1_000_000,
        "market_data.db": 50_000,
        "turbomode.db": 200_000,
        "dagster_home": 70_000,
        "other": -20_000,
        "beyond_models": 1_300_000,
        "beyond_training": 700_000,
        "total": 4_300_000,
    }


def nights_growing(per_night_beyond: list[int]) -> list[NightMeasure]:
    """A first night loading 100 MB of history, then nights adding 2 MB of models and the given other bytes."""
    sizes = {"models": 0, "assets/feature_panel": 100 * MB}
    nights = [night("2026-11-02", {}, dict(sizes))]
    for beyond in per_night_beyond:
        before = dict(sizes)
        sizes = {"models": sizes["models"] + 2 * MB, "assets/feature_panel": sizes["assets/feature_panel"] + beyond}
        nights.append(night("2026-11-03", before, sizes))
    return nights


def test_the_steady_state_leaves_out_the_first_night_and_judges_the_mean_per_night() -> None:
    summary = steady_state(nights_growing([4 * MB, 6 * MB]))
    assert summary == {
        "nights": 2,
        "models_bytes": 4 * MB,
        "beyond_models_bytes": 10 * MB,
        "beyond_models_bytes_per_night": 5 * MB,
        "max_beyond_models_bytes_one_night": 6 * MB,
        "beyond_training_artifacts_bytes_per_night": 5 * MB,
        "goal_bytes_per_night": GOAL_BYTES_PER_NIGHT,
        "goal_met": True,
        "goal_met_beyond_models_alone": True,
    }
    assert verdict(summary).endswith(
        "beyond model artifacts (models/ and the out-of-fold predictions): 5.0 MB, met; beyond models/ alone: met"
    )
    assert not steady_state(nights_growing([9 * MB, 12 * MB]))["goal_met"]
    assert steady_state(nights_growing([]))["nights"] == 0
    assert verdict({"nights": 0}).startswith("one night only")


def test_the_out_of_fold_predictions_count_with_the_model_and_the_stricter_reading_is_reported() -> None:
    first = {"models": 0, OOF: 0, "turbomode.db": 0}
    second = {"models": 2 * MB, OOF: 15 * MB, "turbomode.db": 5 * MB}
    summary = steady_state([night("2026-11-02", {}, first), night("2026-11-03", first, second)])
    assert summary["beyond_training_artifacts_bytes_per_night"] == 5 * MB
    assert summary["beyond_models_bytes_per_night"] == 20 * MB
    assert summary["goal_met"] and not summary["goal_met_beyond_models_alone"]
    assert verdict(summary).endswith("predictions): 5.0 MB, met; beyond models/ alone: NOT met")


def test_the_growth_table_has_a_row_per_night_with_the_home_after_it() -> None:
    rows = growth_table(nights_growing([4 * MB])).splitlines()
    assert rows[0].startswith("| night | session | models + MB | assets + MB | market_data.db + MB |")
    assert rows[2] == "| 1 | 2026-11-02 | 0.0 | 100.0 | 0.0 | 0.0 | 0.0 | 0.0 | 100.0 | 100.0 | 100.0 | 80 |"
    assert rows[3] == "| 2 | 2026-11-03 | 2.0 | 4.0 | 0.0 | 0.0 | 0.0 | 0.0 | 4.0 | 6.0 | 106.0 | 80 |"
