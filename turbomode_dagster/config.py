"""scheduler_config.json -> typed, validated settings; the one place that reads environment variables.

The seed's schema (`version`, `global_settings`, `scheduled_tasks`) is kept as is; the platform's own
sections (`universe`, `history`, `sources`, `compute`, `labels`, `models`, `scanner`, `backtest`,
`drift`, `maintenance`) sit beside it. Every problem is
reported with the path of its field (`models.learners[3].kind`), all at once, before any Dagster object
is built. Types are strict (no bool for an int, no number for a string, dates only as YYYY-MM-DD), every
number is finite and bounded by what it can mean, and a file that is not UTF-8 JSON of sane depth gets a
file-level problem with its line and column where known. A new section is a `Strict` subclass plus one
field on `Settings`; it inherits all of this.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_CONFIG = PACKAGE_DIR / "scheduler_config.json"
SOURCE_NAMES = ("ibkr", "yahoo", "csv", "sample")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_FILE_BYTES = 4 * 1024 * 1024  # the shipped file is 9 KB; 3,000 symbols add about 30 KB
MAX_DEPTH = 16  # the shipped file nests 5 levels (models.learners[i].params.<key>)
# Deeper than this is refused by a scan before decoding (with line and column); between MAX_DEPTH and this,
# the decoded document is refused with the path where it nests too deeply.
DECODE_DEPTH = 600
DASK_SCHEDULER_ENV = "TURBOMODE_DASK_SCHEDULER"  # overrides compute.dask_scheduler (a deployment's address)
MAX_INT_DIGITS = 100  # far beyond every bound (the largest is 2**32), far below int()'s 4,300-digit limit


class TaskId(IntEnum):
    """The seed's six tasks, by the id and function name it gave them."""

    INGESTION = 1
    ORCHESTRATOR = 2
    OVERNIGHT_SCANNER = 3
    BACKTEST_GENERATOR = 4
    DRIFT_MONITOR = 5
    WEEKLY_MAINTENANCE = 6

    @property
    def function_name(self) -> str:
        """The seed's function (and our Dagster job) name for this task."""
        return FUNCTION_NAMES[self]


FUNCTION_NAMES = {
    TaskId.INGESTION: "run_ingestion",
    TaskId.ORCHESTRATOR: "run_orchestrator",
    TaskId.OVERNIGHT_SCANNER: "run_overnight_scanner",
    TaskId.BACKTEST_GENERATOR: "run_backtest_generator",
    TaskId.DRIFT_MONITOR: "run_drift_monitor",
    TaskId.WEEKLY_MAINTENANCE: "run_weekly_maintenance",
}


class ConfigError(ValueError):
    """The config file cannot be used; `problems` lists each bad field as 'path: message'."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = [_one_line(p) for p in problems]
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in self.problems))


def _one_line(text: str) -> str:
    """`text` with newlines, control characters and lone surrogates escaped, so each problem prints as one line."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, values immutable, types strict, floats finite.

    Strict means JSON `true` is no integer and `1` no boolean, `"5"` no number; lists are still read as
    tuples (JSON has no tuples), which `strict=False` on such a field allows.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _iso_date(value: object) -> dt.date:
    """A date written as YYYY-MM-DD, nothing else (no timestamps, week dates or compact forms)."""
    if type(value) is dt.date:  # from Python callers; JSON has no dates
        return value
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError(f"expected a date as 'YYYY-MM-DD', got {value!r}"[:120])
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date: {exc}") from None


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # what numpy and scikit-learn accept as a seed
TimeoutSeconds = Annotated[float, Field(gt=0, le=600)]
Concurrency = Annotated[int, Field(ge=1, le=16)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


def parse_day_of_week(spec: str) -> tuple[int, ...]:
    """APScheduler-style day_of_week ('mon-fri', 'sun', 'mon,wed', '*', '0-6' with mon=0) -> weekdays."""
    days: set[int] = set()
    for part in spec.strip().lower().split(","):
        part = part.strip()
        if part == "*":
            days.update(range(7))
            continue
        match = re.fullmatch(r"([a-z]{3}|[0-6])(?:-([a-z]{3}|[0-6]))?", part)
        if not match:
            raise ValueError(f"{spec!r} is not a day_of_week: use names mon..sun, numbers 0-6, ranges, commas or *")
        first, last = (_day_index(x) for x in (match.group(1), match.group(2) or match.group(1)))
        if last < first:
            raise ValueError(f"{spec!r}: range {part!r} runs backwards")
        days.update(range(first, last + 1))
    return tuple(sorted(days))


def _day_index(token: str) -> int:
    if token.isdigit():
        return int(token)
    if token not in DAY_NAMES:
        raise ValueError(f"{token!r} is not a day name ({', '.join(DAY_NAMES)})")
    return DAY_NAMES.index(token)


class Schedule(Strict):
    """When a task runs, in the global timezone (the seed's APScheduler cron fields)."""

    type: Literal["cron"] = "cron"
    hour: int = Field(ge=0, le=23)
    minute: int = Field(ge=0, le=59)
    day_of_week: str = Field(default="mon-sun", max_length=64)

    @field_validator("day_of_week")
    @classmethod
    def _valid_days(cls, value: str) -> str:
        parse_day_of_week(value)
        return value

    @property
    def cron(self) -> str:
        """The same schedule as a cron string (cron numbers Sunday 0 .. Saturday 6)."""
        days = parse_day_of_week(self.day_of_week)
        dow = "*" if len(days) == 7 else ",".join(str((d + 1) % 7) for d in sorted(days, key=lambda d: (d + 1) % 7))
        return f"{self.minute} {self.hour} * * {dow}"


class JobDefaults(Strict):
    """The seed's APScheduler job defaults, mapped onto Dagster run queueing and schedule skips."""

    coalesce: bool = True
    max_instances: Concurrency = 1
    misfire_grace_time: int = Field(default=300, ge=0, le=86_400)  # seconds; a day late is a missed run


class GlobalSettings(Strict):
    """Timezone of every schedule, run-queue limit and job defaults."""

    timezone: str = Field(default="America/New_York", max_length=64)
    max_concurrent_jobs: Concurrency = 1
    job_defaults: JobDefaults = JobDefaults()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as America/New_York)") from exc
        return value


class ScheduledTask(Strict):
    """One of the seed's six tasks."""

    task_id: int = Field(ge=1, le=6)
    name: Text
    function_name: Text
    endpoint: str = Field(pattern=r"^/\S*$", max_length=200)
    enabled: bool = True
    schedule: Schedule
    timeout_minutes: int = Field(gt=0, le=24 * 60)
    retry_on_failure: bool = False
    max_retries: int = Field(default=0, ge=0, le=10)

    @model_validator(mode="after")
    def _function_matches_id(self) -> ScheduledTask:
        expected = FUNCTION_NAMES[TaskId(self.task_id)]
        if self.function_name != expected:
            raise ValueError(f"task {self.task_id} must have function_name {expected!r}, not {self.function_name!r}")
        return self


class Universe(Strict):
    """The symbols every task covers."""

    symbols: tuple[str, ...] = Field(min_length=1, max_length=10_000, strict=False)

    @field_validator("symbols")
    @classmethod
    def _clean_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in value if not re.fullmatch(r"[A-Z0-9][A-Z0-9.\-]{0,14}", s)]
        if bad:
            raise ValueError(f"symbols must be upper-case tickers, got {bad[:5]}")
        duplicates = sorted(s for s, n in Counter(value).items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate symbols {duplicates[:5]}")
        return value


class History(Strict):
    """How far back a first load goes: within the NYSE calendar, no later than the latest completed session."""

    start_date: IsoDate

    @field_validator("start_date")
    @classmethod
    def _within_calendar(cls, value: dt.date) -> dt.date:
        from turbomode_dagster import calendar

        first = calendar.nyse().first_session.date()
        if value < first:
            raise ValueError(f"{value} is before {first}, the first session of the {calendar.EXCHANGE} calendar")
        latest = dt.date.fromisoformat(calendar.latest_completed_session(dt.datetime.now(dt.timezone.utc)))
        if value > latest:
            raise ValueError(f"{value} is in the future: the latest completed NYSE session is {latest}")
        return value


class IbkrSettings(Strict):
    """IB Gateway connection (paper gateway defaults to port 4002)."""

    host: str = Field(default="127.0.0.1", pattern=r"^[A-Za-z0-9.:\-\[\]]+$", max_length=253)
    port: int = Field(default=4002, ge=1, le=65535)
    client_id: int = Field(default=17, ge=0, le=2**31 - 1)  # TWS API client ids are 32-bit
    timeout_seconds: TimeoutSeconds = 10


class YahooSettings(Strict):
    """yfinance request settings."""

    timeout_seconds: TimeoutSeconds = 10


class CsvSettings(Strict):
    """A folder of <SYMBOL>.csv files; relative paths are under TURBOMODE_HOME."""

    path: str = Field(default="csv", min_length=1, max_length=4096, pattern=r"^[^\x00]+$")


class RegimeShiftSettings(Strict):
    """A change of the sample market from `start_date` on, to prove that drift monitoring notices it."""

    start_date: IsoDate
    volatility_multiplier: float = Field(default=1.0, gt=0, le=10)
    drift_change: float = Field(default=0.0, ge=-0.01, le=0.01)  # added to the daily log-return drift
    planted_effect: float | None = Field(default=None, ge=0, le=5)  # None keeps sources.sample.planted_effect


class SampleSettings(Strict):
    """The built-in synthetic market: its seed, its planted predictive effect, and an optional regime shift."""

    seed: Seed = 7
    planted_effect: float = Field(default=0.0, ge=0, le=5)  # in standard deviations of the daily return
    regime_shift: RegimeShiftSettings | None = None  # off by default


class Sources(Strict):
    """Fallback order and per-source settings."""

    order: tuple[str, ...] = Field(default=("ibkr", "yahoo"), max_length=len(SOURCE_NAMES) * 2, strict=False)
    ibkr: IbkrSettings = IbkrSettings()
    yahoo: YahooSettings = YahooSettings()
    csv: CsvSettings = CsvSettings()
    sample: SampleSettings = SampleSettings()

    @field_validator("order")
    @classmethod
    def _known_sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in SOURCE_NAMES]
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; known: {list(SOURCE_NAMES)}")
        if not value:
            raise ValueError("at least one source is needed")
        if len(set(value)) != len(value):
            raise ValueError(f"a source is listed twice in {list(value)}")
        return value


class Compute(Strict):
    """Where features are computed (auto picks cuDF when it imports and a GPU is visible) and how a job's steps run.

    `executor`: `default` is Dagster's (a process per step under `dagster dev` and `dagster job execute`, in
    process for `turbomode` commands); the others apply everywhere. `dask` needs a running scheduler's address.
    """

    backend: Literal["auto", "pandas", "cudf"] = "auto"
    executor: Literal["default", "in_process", "multiprocess", "dask"] = "default"
    max_concurrent: int | None = Field(default=None, ge=1, le=256)  # multiprocess: steps at once (None: CPUs)
    dask_scheduler: str | None = Field(default=None, pattern=r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+$", max_length=300)

    @model_validator(mode="after")
    def _dask_has_a_scheduler(self) -> Compute:
        if self.executor == "dask" and self.dask_scheduler is None:
            raise ValueError(
                "executor 'dask' needs a scheduler address: set compute.dask_scheduler "
                f"or {DASK_SCHEDULER_ENV} (e.g. tcp://10.0.0.5:8786)"
            )
        return self


class Labels(Strict):
    """SELL / HOLD / BUY from the forward return over `horizon` sessions."""

    horizon: int = Field(default=5, ge=1, le=60)
    sell_threshold: float = Field(default=-0.05, gt=-1, lt=0)  # a return below -100% cannot happen
    buy_threshold: float = Field(default=0.05, gt=0, le=1)


class Learner(Strict):
    """One base learner: `kind` is "xgboost" or a dotted path to a classifier of an allow-listed package.

    The kind is resolved and constructed with its params here, at validate time (models.learners).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    kind: str = Field(pattern=r"^(xgboost|[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+)$", max_length=200)
    params: dict[str, object] = Field(default_factory=dict, max_length=100)
    max_rows: int | None = Field(default=None, gt=0, le=100_000_000)

    @field_validator("kind")
    @classmethod
    def _allowed_classifier(cls, kind: str) -> str:
        from turbomode_dagster.models.learners import learner_class

        learner_class(kind)
        return kind

    @field_validator("params")
    @classmethod
    def _constructs(cls, params: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        kind = info.data.get("kind")
        if kind is not None:  # a bad kind is reported on its own field
            from turbomode_dagster.models.learners import check_learner

            check_learner(kind, params)
        return params


class Models(Strict):
    """The base learners (empty: the built-in eight), walk-forward folds, seed, SHAP rows, row caps, step split."""

    learners: tuple[Learner, ...] = Field(default=(), max_length=32, strict=False)
    n_folds: int = Field(default=4, ge=2, le=12)
    seed: Seed = 0
    shap_rows: int = Field(default=2000, ge=100, le=1_000_000)
    # Row caps per fit (seeded samples): they bound training time at thousands of symbols and do not
    # bind at the shipped universe (83 symbols x 10 years: ~210k samples, ~170k of them out of fold).
    max_train_rows: int | None = Field(default=1_500_000, ge=1_000, le=1_000_000_000)
    meta_max_rows: int | None = Field(default=250_000, ge=1_000, le=1_000_000_000)
    # One Dagster step per base learner plus a stacking step (same bytes): pays where an executor has
    # room for several fits at once; each step reads the window and builds the training block itself.
    learner_steps: bool = False

    @field_validator("learners")
    @classmethod
    def _distinct_names(cls, learners: tuple[Learner, ...]) -> tuple[Learner, ...]:
        names = [learner.name for learner in learners]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate learner names {duplicates}")
        if len(learners) == 1:
            raise ValueError("an ensemble needs at least two learners")
        return learners


class Scanner(Strict):
    """A BUY (SELL) needs p_buy (p_sell) >= min_probability and above the other; top_features explain it."""

    min_probability: float = Field(default=0.25, gt=0, le=1)
    top_features: int = Field(default=5, ge=1, le=20)


class Backtest(Strict):
    """Task 4's long-only strategy over out-of-fold probabilities, its costs, benchmark and chance baseline.

    Entry is the scanner's BUY rule at `entry_probability` (default: scanner.min_probability); a
    position is held at least `min_holding_sessions` (default: labels.horizon) and then exits once
    p_buy falls below `exit_probability` (default: 0.8 x the entry threshold) or p_sell exceeds p_buy.
    """

    weighting: Literal["equal", "conviction"] = "equal"
    entry_probability: float | None = Field(default=None, gt=0, lt=1)
    exit_probability: float | None = Field(default=None, gt=0, lt=1)
    min_holding_sessions: int | None = Field(default=None, ge=1, le=250)
    max_positions: int = Field(default=10, ge=1, le=1000)
    fees_bps: float = Field(default=5.0, ge=0, le=500)
    slippage_bps: float = Field(default=5.0, ge=0, le=500)
    initial_cash: float = Field(default=1_000_000.0, gt=0, le=1e12)
    benchmark_symbol: str = Field(default="SPY", pattern=r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")
    chance_seeds: int = Field(default=20, ge=2, le=500)
    base_learners: bool = True

    @model_validator(mode="after")
    def _exit_below_entry(self) -> Backtest:
        entry, exit_ = self.entry_probability, self.exit_probability
        if entry is not None and exit_ is not None and exit_ > entry:
            raise ValueError(
                f"exit_probability {exit_} is above entry_probability {entry}: "
                "the exit threshold must not exceed the entry threshold (hysteresis)"
            )
        return self


class Drift(Strict):
    """Task 5: the monitoring window and the flag rule (see turbomode_dagster.drift.rule)."""

    window_sessions: int = Field(default=20, ge=5, le=250)
    persistence: int = Field(default=3, ge=1, le=20)
    feature_share: float = Field(default=0.35, gt=0, le=1)
    min_matured_sessions: int = Field(default=20, ge=5, le=500)
    performance_sessions: int = Field(default=60, ge=5, le=1000)
    ic_drop_t: float = Field(default=3.0, gt=0, le=20)

    @model_validator(mode="after")
    def _enough_matured_sessions(self) -> Drift:
        if self.min_matured_sessions > self.performance_sessions:
            raise ValueError(
                f"min_matured_sessions {self.min_matured_sessions} exceeds performance_sessions "
                f"{self.performance_sessions}: the performance rule could never fire"
            )
        return self


class Maintenance(Strict):
    """Task 6: log archiving age (and, if set, how long archives stay), retention of Parquet partitions and
    model artifacts, and scratch folders.

    The defaults keep 60 sessions of every partitioned Parquet asset (drift.performance_sessions, the
    longest look-back of any task, so each session drift judges can be rerun from its files) and the
    champion, the five newest model versions and every model behind a kept session's signals.
    """

    log_retention_days: int = Field(default=30, ge=1, le=3650)
    archive_retention_days: int | None = Field(default=None, ge=1, le=36500)  # None: archives are kept
    keep_sessions: int = Field(default=60, ge=1, le=10_000)
    keep_model_versions: int = Field(default=5, ge=1, le=1000)
    temp_folders: tuple[str, ...] = Field(default=("tmp",), max_length=32, strict=False)
    temp_max_age_hours: int = Field(default=24, ge=1, le=24 * 365)

    @field_validator("temp_folders")
    @classmethod
    def _inside_home(cls, folders: tuple[str, ...]) -> tuple[str, ...]:
        from turbomode_dagster.maintenance.files import temp_folder_problem

        problems = [p for p in (temp_folder_problem(folder) for folder in folders) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return folders


class Settings(Strict):
    """The whole validated configuration."""

    version: str = Field(pattern=r"^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$")
    global_settings: GlobalSettings
    scheduled_tasks: tuple[ScheduledTask, ...] = Field(max_length=len(TaskId), strict=False)
    universe: Universe
    history: History
    sources: Sources = Sources()
    compute: Compute = Compute()
    labels: Labels = Labels()
    models: Models = Models()
    scanner: Scanner = Scanner()
    backtest: Backtest = Backtest()
    drift: Drift = Drift()
    maintenance: Maintenance = Maintenance()

    @field_validator("scheduled_tasks")
    @classmethod
    def _six_distinct_tasks(cls, tasks: tuple[ScheduledTask, ...]) -> tuple[ScheduledTask, ...]:
        problems = task_id_problems([t.task_id for t in tasks])
        if problems:
            raise ValueError("; ".join(problems))
        return tasks

    def task(self, task_id: TaskId) -> ScheduledTask:
        """The configured task with this id."""
        return next(t for t in self.scheduled_tasks if t.task_id == task_id)


def task_id_problems(ids: list[object]) -> list[str]:
    """Duplicate and missing task ids among the configured tasks (ids that are not integers are skipped)."""
    ids = [i for i in ids if type(i) is int]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    problems = [f"duplicate task_id {i}" for i in duplicates]
    problems += [f"task {t.value} ({t.function_name}) is missing" for t in TaskId if t.value not in ids]
    return problems


def _location(loc: tuple[str | int, ...]) -> str:
    """A field path as written in the docs, `models.learners[3].kind`; an odd key is quoted: `scanner[" x"]`."""
    path = "".join(_step(p) for p in loc).removeprefix(".")
    return path or "(top level)"


def _step(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return f".{part}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part) else f"[{json.dumps(part)}]"


def parse_settings(raw: object, source: str = "config") -> Settings:
    """Validate a decoded JSON document; raise ConfigError listing every bad field by path."""
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{_location(error['loc'])}: {message}")
        problems += [f"scheduled_tasks: {p}" for p in _raw_task_id_problems(raw) if not any(p in q for q in problems)]
        raise ConfigError(source, problems) from None


def _raw_task_id_problems(raw: object) -> list[str]:
    """Task-id problems read straight off the document, so they show even when a task has other errors."""
    tasks = raw.get("scheduled_tasks") if isinstance(raw, dict) else None
    if not isinstance(tasks, list):
        return []
    return task_id_problems([t.get("task_id") for t in tasks if isinstance(t, dict)])


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a config file (default: TURBOMODE_CONFIG or the shipped one) plus env overrides."""
    file = Path(path) if path else config_path()
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(file), [f"cannot read the file: {getattr(exc, 'strerror', None) or exc}"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(str(file), [f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB"])
    raw = decode_document(data, str(file))
    override = os.environ.get("TURBOMODE_SOURCES")
    if override and isinstance(raw, dict):
        sources = raw.setdefault("sources", {})
        if isinstance(sources, dict):
            sources["order"] = [s.strip() for s in override.split(",") if s.strip()]
    scheduler = os.environ.get(DASK_SCHEDULER_ENV)
    if scheduler and isinstance(raw, dict):
        compute = raw.setdefault("compute", {})
        if isinstance(compute, dict):
            compute["dask_scheduler"] = scheduler.strip()
    return parse_settings(raw, str(file))


class _DocumentProblem(ValueError):
    """Raised from inside the JSON decoder's hooks: a value JSON allows but a config cannot hold."""


def decode_document(data: bytes, source: str) -> object:
    """Strict UTF-8 JSON -> Python: no NaN/Infinity, no duplicate keys, bounded numbers and nesting."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_column(data, exc.start)
        raise ConfigError(
            source, [f"line {line} column {column}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); save it as UTF-8"]
        ) from None
    deep = _first_offset_nested_beyond(text, DECODE_DEPTH)
    if deep is not None:
        line, column = _line_column(data, len(text[:deep].encode("utf-8")))
        raise ConfigError(
            source, [f"line {line} column {column}: the document nests deeper than {DECODE_DEPTH} levels here "
                     f"(a config nests at most {MAX_DEPTH})"]
        )  # fmt: skip
    try:
        raw = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise ConfigError(source, [f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    except _DocumentProblem as exc:
        raise ConfigError(source, [f"invalid value: {exc}"]) from None
    except RecursionError:
        raise ConfigError(source, [f"the document nests too deeply (at most {MAX_DEPTH} levels)"]) from None
    problems = _document_problems(raw)
    if problems:
        raise ConfigError(source, problems)
    return raw


def _first_offset_nested_beyond(text: str, limit: int) -> int | None:
    """Offset of the first bracket opened beyond `limit` levels (outside strings), or None.

    Checked before decoding so the recursive decoder never runs near Python's recursion limit, where an
    unrelated callback (a garbage-collection hook) can fail and print a traceback of its own.
    """
    depth = 0
    for match in _BRACKET_OR_STRING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return match.start()
        elif token in "]}":
            depth -= 1
    return None


_BRACKET_OR_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and character column of byte `offset`."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def _reject_constant(name: str) -> float:
    raise _DocumentProblem(f"{name} is not a number a config may hold (only finite numbers are allowed)")


def _bounded_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _DocumentProblem(f"integer {literal[:24]}... has {len(literal)} digits; no field takes one that large")
    return int(literal)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _DocumentProblem(f"number {literal[:24]} is too large to be a finite float")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = Counter(key for key, _ in pairs)
    duplicates = [key for key, n in keys.items() if n > 1]
    if duplicates:
        raise _DocumentProblem(f"key {duplicates[0]!r} appears twice in one object (JSON would keep only the last)")
    return dict(pairs)


def _document_problems(raw: object) -> list[str]:
    """Containers nested deeper than MAX_DEPTH and text that is not encodable (lone surrogates), by path."""
    problems = []
    stack: list[tuple[object, tuple[str | int, ...]]] = [(raw, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_DEPTH:
            too_deep = f"{_location(path[:MAX_DEPTH])}: nests deeper than {MAX_DEPTH} levels"
            if too_deep not in problems:
                problems.append(too_deep)
            continue
        if isinstance(node, str) and not _encodable(node):
            problems.append(f"{_location(path)}: text holds an unpaired surrogate, which is not valid Unicode")
        elif isinstance(node, dict):
            for key, value in node.items():
                if not _encodable(key):
                    problems.append(f"{_location((*path, key))}: a key holds an unpaired surrogate, not valid Unicode")
                stack.append((value, (*path, key)))
        elif isinstance(node, list):
            stack.extend((value, (*path, index)) for index, value in enumerate(node))
    return sorted(problems)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def config_path() -> Path:
    """TURBOMODE_CONFIG if set, else the scheduler_config.json shipped in the package."""
    return Path(os.environ.get("TURBOMODE_CONFIG") or SHIPPED_CONFIG)


def turbomode_home() -> Path:
    """TURBOMODE_HOME if set; else the checkout's data/ folder, or ~/turbomode for an installed package."""
    if env := os.environ.get("TURBOMODE_HOME"):
        return Path(env).expanduser().resolve()
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").exists() and (checkout / "data").is_dir():
        return checkout / "data"
    return Path.home() / "turbomode"


def assets_root(home: Path | None = None) -> str:
    """Where the per-night Parquet assets go: TURBOMODE_ASSETS_URL (a path or an fsspec URL such as
    `s3://bucket/assets`) if set, else `assets/` under `home` (default `$TURBOMODE_HOME`)."""
    return os.environ.get("TURBOMODE_ASSETS_URL") or str((home or turbomode_home()) / "assets")


def datasets_root(home: Path | None = None) -> str:
    """Where the session datasets go: TURBOMODE_DATASETS_URL (a path or an fsspec URL such as
    `s3://bucket/datasets`) if set, else `datasets/` under `home` (default `$TURBOMODE_HOME`)."""
    return os.environ.get("TURBOMODE_DATASETS_URL") or str((home or turbomode_home()) / "datasets")


def steps_folder(home: Path | None = None) -> Path:
    """Where a run's steps hand outputs on to its later steps: `steps/` under `home` (default `$TURBOMODE_HOME`)."""
    return (home or turbomode_home()) / "steps"


def dagster_home_env() -> Path | None:
    """DAGSTER_HOME when set (Dagster's own instance folder), else None."""
    env = os.environ.get("DAGSTER_HOME")
    return Path(env) if env else None


def failure_webhook_url() -> str | None:
    """TURBOMODE_FAILURE_WEBHOOK: where failed runs are POSTed as JSON (never kept in a file), or None."""
    return os.environ.get("TURBOMODE_FAILURE_WEBHOOK") or None


# dagster-postgres's connection fields -> the variables a PostgreSQL-backed dagster.yaml reads them from.
POSTGRES_ENV = {
    "hostname": "TURBOMODE_PG_HOST",
    "port": "TURBOMODE_PG_PORT",
    "username": "TURBOMODE_PG_USER",
    "password": "TURBOMODE_PG_PASSWORD",
    "db_name": "TURBOMODE_PG_DB",
}

POSTGRES_FIELD_NAMES = {
    "hostname": "host",
    "port": "port",
    "username": "user",
    "password": "password",
    "db_name": "database",
}


@dataclass(frozen=True)
class PostgresTarget:
    """Where a PostgreSQL-backed instance connects, from TURBOMODE_PG_*; the password is never printed."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    db: str

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.db}"


def postgres_target() -> PostgresTarget:
    """The TURBOMODE_PG_* variables, checked; a ConfigError names each one unset or malformed.

    TURBOMODE_PG_PASSWORD must be set but may be empty (a server that trusts local TCP connections).
    """
    values = {field_name: os.environ.get(var) for field_name, var in POSTGRES_ENV.items()}
    problems = [
        f"{var}: not set (the PostgreSQL server's {POSTGRES_FIELD_NAMES[field_name]})"
        for field_name, var in POSTGRES_ENV.items()
        if values[field_name] is None or (field_name != "password" and not values[field_name].strip())
    ]
    port = (values["port"] or "").strip()
    if port and not (re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535):
        problems.append(f"{POSTGRES_ENV['port']}: {port!r} is not a port number (1..65535)")
    if problems:
        raise ConfigError("environment", problems)
    return PostgresTarget(values["hostname"], int(port), values["username"], values["password"], values["db_name"])


def unset_variables(names: list[str]) -> list[str]:
    """Those of `names` not set in the environment (a dagster.yaml's `env:` references, checked before Dagster's)."""
    return [name for name in names if name not in os.environ]


@lru_cache(maxsize=8)
def _cached(path: str, sources_override: str | None, dask_scheduler: str | None) -> Settings:
    return load_settings(path)


def settings() -> Settings:
    """The settings for the current environment, read once per (config path, source and scheduler override)."""
    return _cached(str(config_path()), os.environ.get("TURBOMODE_SOURCES"), os.environ.get(DASK_SCHEDULER_ENV))
