"""Config validation never tracebacks: undecodable files, strict types, finite and bounded numbers, sane dates."""

from __future__ import annotations

import datetime as dt
import json
import typing
from pathlib import Path

import annotated_types
import pytest
from pydantic import BaseModel

from turbomode_dagster import calendar
from turbomode_dagster.cli import main
from turbomode_dagster.config import MAX_DEPTH, MAX_FILE_BYTES, ConfigError, Settings, load_settings, parse_settings
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster_tests.conftest import patch_config, shipped_config


def problems_of(raw: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, "test.json")
    return caught.value.problems


def file_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.source == str(path)
    return caught.value.problems


def validate_output(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`turbomode config validate PATH`: exit 1, no traceback; the problem lines."""
    assert main(["config", "validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    header, *lines = captured.out.splitlines()
    assert header == f"{path}: INVALID, {len(lines)} problem(s):"
    assert all(line.startswith("  - ") for line in lines)
    return [line.removeprefix("  - ") for line in lines]


def test_a_non_utf8_byte_is_named_by_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(shipped_config(), indent=2).encode()
    offset = text.index(b"Master")
    file = tmp_path / "latin1.json"
    file.write_bytes(text[:offset] + b"\xe9" + text[offset:])
    line = text[:offset].count(b"\n") + 1
    column = offset - text.rfind(b"\n", 0, offset)
    (problem,) = validate_output(file, capsys)
    assert problem.startswith(f"line {line} column {column}: not valid UTF-8 (byte 0xe9)")


@pytest.mark.parametrize("depth", [100_000, MAX_DEPTH + 5])
def test_deep_nesting_is_a_problem_not_a_recursion_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    raw = shipped_config()
    raw["models"]["learners"][0]["params"]["max_depth"] = "@"
    text = json.dumps(raw).replace('"@"', "[" * depth + "]" * depth)
    file = tmp_path / "deep.json"
    file.write_text(text)
    (problem,) = validate_output(file, capsys)
    assert f"nests {'deeper than 600 levels here' if depth > 1000 else 'deep'}" in problem
    if depth < 1000:
        assert problem.startswith("models.learners[0].params.max_depth[0][0]")


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("NaN", "NaN is not a number a config may hold"),
        ("Infinity", "Infinity is not a number"),
        ("-Infinity", "-Infinity is not a number"),
        ("1e400", "number 1e400 is too large"),
        ("1" * 5000, "has 5000 digits"),
    ],
)
def test_numbers_json_allows_but_no_field_can_hold_are_rejected(tmp_path: Path, literal: str, expected: str) -> None:
    text = json.dumps(shipped_config()).replace('"buy_threshold": 0.05', f'"buy_threshold": {literal}')
    file = tmp_path / "nonfinite.json"
    file.write_text(text)
    (problem,) = file_problems(file)
    assert expected in problem


def test_a_duplicate_key_is_rejected_not_silently_dropped(tmp_path: Path) -> None:
    text = json.dumps(shipped_config()).replace('"hour": 22,', '"hour": 22, "hour": 3,')
    file = tmp_path / "dup.json"
    file.write_text(text)
    (problem,) = file_problems(file)
    assert "key 'hour' appears twice" in problem


def test_an_unpaired_surrogate_or_newline_in_a_key_prints_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = shipped_config()
    raw["scanner"]["top\nfeatures\ud800"] = 1
    raw["scheduled_tasks"][0]["name"] = "ingest \udfff"
    file = tmp_path / "surrogate.json"
    file.write_text(json.dumps(raw))  # ensure_ascii writes the surrogates as \\ud800 escapes
    problems = validate_output(file, capsys)
    assert problems == [
        'scanner["top\\nfeatures\\ud800"]: a key holds an unpaired surrogate, not valid Unicode',
        "scheduled_tasks[0].name: text holds an unpaired surrogate, which is not valid Unicode",
    ]


def test_a_key_that_is_no_identifier_is_quoted_in_its_path() -> None:
    raw = shipped_config()
    raw["labels"][" horizon"] = 5
    raw["labels"]["a.b"] = 1
    assert problems_of(raw) == ['labels[" horizon"]: unknown key', 'labels["a.b"]: unknown key']


def test_an_oversized_file_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    file = tmp_path / "huge.json"
    file.write_bytes(b"[" + b"0," * (MAX_FILE_BYTES // 2) + b"0]")
    assert file_problems(file) == [f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB"]


def test_a_path_that_cannot_be_opened_is_a_problem(tmp_path: Path) -> None:
    assert "cannot read the file" in file_problems(tmp_path)[0]
    assert "cannot read the file" in file_problems(Path("bad\x00name.json"))[0]


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("scheduled_tasks.0.schedule.hour", True),
        ("scheduled_tasks.0.schedule.minute", "45"),
        ("scheduled_tasks.0.schedule.minute", 45.0),
        ("scheduled_tasks.0.enabled", 1),
        ("scheduled_tasks.0.retry_on_failure", "yes"),
        ("scheduled_tasks.0.max_retries", 2.0),
        ("global_settings.job_defaults.coalesce", 0),
        ("sources.ibkr.port", "4002"),
        ("sources.yahoo.timeout_seconds", True),
        ("labels.buy_threshold", "0.05"),
        ("history.start_date", 1451865600),
        ("history.start_date", "20160104"),
        ("history.start_date", "2016-W01-1"),
        ("history.start_date", "2016-01-04T00:00"),
        ("history.start_date", "\u0662\u0660\u0661\u0666-\u0660\u0661-\u0660\u0664"),  # Arabic-Indic digits
        ("models.learners.0.max_rows", False),
    ],
)
def test_a_coercion_that_changes_meaning_is_rejected(dotted: str, value: object) -> None:
    problems = problems_of(patch_config(shipped_config(), {dotted: value}))
    path = dotted.replace(".0.", "[0].").replace("scheduled_tasks.0", "scheduled_tasks[0]")
    assert [p.split(": ")[0] for p in problems] == [path], problems


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("labels.sell_threshold", -2),
        ("labels.sell_threshold", -1),
        ("labels.buy_threshold", 100),
        ("labels.buy_threshold", 0),
        ("scanner.min_probability", 1.5),
        ("sources.ibkr.timeout_seconds", 1e9),
        ("sources.yahoo.timeout_seconds", 601),
        ("scheduled_tasks.0.timeout_minutes", 24 * 60 + 1),
        ("scheduled_tasks.0.max_retries", 1_000_000),
        ("global_settings.job_defaults.misfire_grace_time", 10**7),
        ("global_settings.max_concurrent_jobs", 1000),
        ("sources.ibkr.client_id", 2**40),
        ("sources.sample.seed", -1),
        ("sources.sample.planted_effect", 100.0),
        ("models.seed", 2**32),
        ("models.shap_rows", 10**9),
        ("models.learners.0.max_rows", 10**12),
        ("version", "1.0; rm -rf /"),
    ],
)
def test_a_number_beyond_what_it_can_mean_is_rejected(dotted: str, value: object) -> None:
    problems = problems_of(patch_config(shipped_config(), {dotted: value}))
    path = dotted.replace(".0.", "[0].").replace("scheduled_tasks.0", "scheduled_tasks[0]")
    assert [p.split(": ")[0] for p in problems] == [path], problems


@pytest.mark.parametrize(("dotted", "value"), [("labels.buy_threshold", 1), ("scanner.min_probability", 1.0)])
def test_the_closed_ends_of_the_ranges_are_accepted(dotted: str, value: float) -> None:
    parse_settings(patch_config(shipped_config(), {dotted: value}))


def _latest_completed() -> dt.date:
    return dt.date.fromisoformat(calendar.latest_completed_session(dt.datetime.now(dt.timezone.utc)))


@pytest.mark.parametrize("start", ["0001-01-01", "1900-01-01", "1989-12-29", "future", "9999-12-31"])
def test_a_start_date_outside_the_calendar_or_in_the_future_is_rejected(start: str) -> None:
    if start == "future":
        start = (_latest_completed() + dt.timedelta(days=1)).isoformat()
    (problem,) = problems_of(patch_config(shipped_config(), {"history.start_date": start}))
    assert problem.startswith(f"history.start_date: {start} is ")


def test_every_start_date_that_validates_gives_partitions_holding_the_latest_session() -> None:
    latest = _latest_completed()
    for start in (calendar.nyse().first_session.date(), latest):
        cfg = parse_settings(patch_config(shipped_config(), {"history.start_date": start.isoformat()}))
        partitions = trading_days(cfg.history.start_date)
        assert partitions.has_partition_key(latest.isoformat())
        assert partitions.get_first_partition_key() == calendar.sessions(start, latest)[0]


def test_nightly_refuses_a_date_before_the_history(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nightly", "--date", "2026-10-30"]) == 2
    assert "2026-10-30 is before history.start_date 2026-11-02" in capsys.readouterr().err


def test_odd_shapes_are_problems_not_crashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = shipped_config()
    raw["scheduled_tasks"][0]["task_id"] = [1]
    raw["scheduled_tasks"][1]["task_id"] = [1]
    assert "scheduled_tasks[0].task_id: Input should be a valid integer" in problems_of(raw)
    monkeypatch.setenv("TURBOMODE_SOURCES", "sample")
    raw = shipped_config()
    raw["sources"] = ["sample"]
    file = tmp_path / "sources_list.json"
    file.write_text(json.dumps(raw))
    assert file_problems(file)[0].startswith("sources:")


def _numeric_fields(model: type[BaseModel], prefix: str = "") -> typing.Iterator[tuple[str, object]]:
    for name, info in model.model_fields.items():
        kinds = {info.annotation, *typing.get_args(info.annotation)}
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from _numeric_fields(kind, f"{prefix}{name}.")
            for inner in typing.get_args(kind):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from _numeric_fields(inner, f"{prefix}{name}[].")
        if kinds & {int, float}:
            yield f"{prefix}{name}", info


def test_every_numeric_field_has_a_lower_and_an_upper_bound() -> None:
    fields = dict(_numeric_fields(Settings))
    assert "models.learners[].max_rows" in fields and "scheduled_tasks[].schedule.hour" in fields
    unbounded = [
        path
        for path, info in fields.items()
        if not any(isinstance(m, annotated_types.Ge | annotated_types.Gt) for m in info.metadata)
        or not any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in info.metadata)
    ]
    assert unbounded == []
