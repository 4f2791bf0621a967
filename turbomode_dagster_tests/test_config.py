"""scheduler_config.json -> Settings: the shipped file, every kind of bad field, cron conversion, env overrides."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from turbomode_dagster import config
from turbomode_dagster.config import (
    SHIPPED_CONFIG,
    ConfigError,
    Schedule,
    TaskId,
    load_settings,
    parse_day_of_week,
    parse_settings,
)
from turbomode_dagster_tests.conftest import patch_config, shipped_config


def problems_of(raw: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, "test.json")
    return caught.value.problems


def test_shipped_config_is_valid_and_keeps_the_seed_schedule() -> None:
    cfg = load_settings(SHIPPED_CONFIG)
    assert [t.task_id for t in cfg.scheduled_tasks] == [1, 2, 3, 4, 5, 6]
    assert [t.function_name for t in cfg.scheduled_tasks] == [t.function_name for t in TaskId]
    ingestion = cfg.task(TaskId.INGESTION)
    assert (ingestion.schedule.hour, ingestion.schedule.minute, ingestion.schedule.day_of_week) == (22, 45, "mon-sun")
    assert (ingestion.timeout_minutes, ingestion.retry_on_failure, ingestion.max_retries) == (30, True, 3)
    assert cfg.global_settings.timezone == "America/New_York"
    assert cfg.global_settings.job_defaults.misfire_grace_time == 300
    assert cfg.sources.order == ("ibkr", "yahoo")
    assert len(cfg.universe.symbols) == 83
    assert cfg.history.start_date == dt.date(2016, 1, 4)


def test_every_bad_field_is_reported_at_once_with_its_path() -> None:
    raw = shipped_config()
    raw["surprise"] = 1
    raw["global_settings"]["timezone"] = "Mars/Olympus_Mons"
    raw["global_settings"]["job_defaults"]["colesce"] = True
    tasks = raw["scheduled_tasks"]
    tasks[0]["schedule"]["hour"] = 25
    tasks[0]["schedule"]["minute"] = 60
    tasks[1]["task_id"] = 1  # a duplicate of task 1, which leaves task 2 missing
    tasks[2]["schedule"]["day_of_week"] = "funday"
    raw["sources"]["order"] = ["ibkr", "bloomberg"]

    problems = problems_of(raw)

    def one(prefix: str) -> str:
        found = [p for p in problems if p.startswith(prefix)]
        assert len(found) == 1, f"expected one problem at {prefix!r} in {problems}"
        return found[0]

    assert "unknown key" in one("surprise:")
    assert "unknown key" in one("global_settings.job_defaults.colesce:")
    assert "Mars/Olympus_Mons" in one("global_settings.timezone:")
    assert "23" in one("scheduled_tasks[0].schedule.hour:")
    assert "59" in one("scheduled_tasks[0].schedule.minute:")
    assert "funday" in one("scheduled_tasks[2].schedule.day_of_week:")
    assert "bloomberg" in one("sources.order:")
    assert "scheduled_tasks: duplicate task_id 1" in problems
    assert "scheduled_tasks: task 2 (run_orchestrator) is missing" in problems
    assert len(problems) == 10, problems


def test_a_missing_task_is_named() -> None:
    raw = shipped_config()
    del raw["scheduled_tasks"][5]
    assert problems_of(raw) == ["scheduled_tasks: task 6 (run_weekly_maintenance) is missing"]


def test_a_task_whose_function_name_does_not_match_its_id_is_rejected() -> None:
    raw = shipped_config()
    raw["scheduled_tasks"][3]["function_name"] = "run_ingestion"
    (problem,) = problems_of(raw)
    assert problem.startswith("scheduled_tasks[3]:")
    assert "run_backtest_generator" in problem


@pytest.mark.parametrize(
    ("dotted", "value", "path"),
    [
        ("universe.symbols", ["AAPL", "aapl"], "universe.symbols"),
        ("universe.symbols", ["AAPL", "AAPL"], "universe.symbols"),
        ("universe.symbols", [], "universe.symbols"),
        ("sources.order", [], "sources.order"),
        ("sources.order", ["sample", "sample"], "sources.order"),
        ("history.start_date", "2016-13-01", "history.start_date"),
        ("global_settings.max_concurrent_jobs", 0, "global_settings.max_concurrent_jobs"),
        ("labels.sell_threshold", 0.1, "labels.sell_threshold"),
        ("sources.ibkr.port", 70000, "sources.ibkr.port"),
    ],
)
def test_other_bad_values_name_their_field(dotted: str, value: object, path: str) -> None:
    problems = problems_of(patch_config(shipped_config(), {dotted: value}))
    assert [p.split(":")[0] for p in problems] == [path], problems


def test_a_document_that_is_not_an_object_is_reported_at_top_level() -> None:
    assert problems_of([1, 2])[0].startswith("(top level):")


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    text = json.dumps(shipped_config(), indent=2)[:200]
    file = tmp_path / "broken.json"
    file.write_text(text)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
    with pytest.raises(ConfigError) as caught:
        load_settings(file)
    assert caught.value.source == str(file)
    (problem,) = caught.value.problems
    assert problem.startswith(where)
    assert "invalid JSON" in problem


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nowhere.json")
    assert "cannot read the file" in caught.value.problems[0]


@pytest.mark.parametrize(
    ("day_of_week", "cron_days"),
    [
        ("mon-sun", "*"),
        ("*", "*"),
        ("0-6", "*"),
        ("sun", "0"),
        ("mon-fri", "1,2,3,4,5"),
        ("sat,sun", "0,6"),
        ("mon,wed,fri", "1,3,5"),
        ("6", "0"),
    ],
)
def test_cron_conversion(day_of_week: str, cron_days: str) -> None:
    assert Schedule(hour=22, minute=45, day_of_week=day_of_week).cron == f"45 22 * * {cron_days}"


def test_shipped_crons() -> None:
    cfg = load_settings(SHIPPED_CONFIG)
    assert [t.schedule.cron for t in cfg.scheduled_tasks] == [
        "45 22 * * *",
        "0 23 * * *",
        "30 23 * * *",
        "0 0 * * *",
        "30 0 * * *",
        "0 2 * * 0",
    ]


@pytest.mark.parametrize("spec", ["funday", "fri-mon", "7", "mon-", ""])
def test_bad_day_of_week_specs_raise(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_day_of_week(spec)


def test_turbomode_sources_overrides_the_order(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(config_file).sources.order == ("csv",)
    monkeypatch.setenv("TURBOMODE_SOURCES", " csv, sample ")
    assert load_settings(config_file).sources.order == ("csv", "sample")
    monkeypatch.setenv("TURBOMODE_SOURCES", "sample,reuters")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file)
    assert caught.value.problems[0].startswith("sources.order:")
    assert "reuters" in caught.value.problems[0]


def test_turbomode_config_selects_the_file_and_settings_follow_it(make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.config_path() == SHIPPED_CONFIG
    first = make_config({"universe.symbols": ["AAPL"]})
    second = make_config({"universe.symbols": ["MSFT", "NVDA"]})
    monkeypatch.setenv("TURBOMODE_CONFIG", str(first))
    assert config.config_path() == first
    assert config.settings().universe.symbols == ("AAPL",)
    monkeypatch.setenv("TURBOMODE_CONFIG", str(second))
    assert config.settings().universe.symbols == ("MSFT", "NVDA")
    monkeypatch.setenv("TURBOMODE_SOURCES", "csv")
    assert config.settings().sources.order == ("csv",)


def test_turbomode_home_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURBOMODE_HOME", str(tmp_path / "x" / ".." / "home"))
    assert config.turbomode_home() == (tmp_path / "home").resolve()


def test_settings_are_immutable() -> None:
    cfg = load_settings(SHIPPED_CONFIG)
    with pytest.raises(ValueError):
        cfg.global_settings.timezone = "UTC"
