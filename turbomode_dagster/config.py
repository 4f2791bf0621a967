"""scheduler_config.json -> typed, validated settings; the one place that reads environment variables.

The seed's schema (`version`, `global_settings`, `scheduled_tasks`) is kept as is; the platform's own
sections (`universe`, `history`, `sources`, `compute`, `labels`, `models`, `scanner`) sit beside it. Every problem is
reported with the dotted path of its field, all at once, before any Dagster object is built.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_CONFIG = PACKAGE_DIR / "scheduler_config.json"
SOURCE_NAMES = ("ibkr", "yahoo", "csv", "sample")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    day_of_week: str = "mon-sun"

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
    max_instances: int = Field(default=1, ge=1)
    misfire_grace_time: int = Field(default=300, ge=0)


class GlobalSettings(Strict):
    """Timezone of every schedule, run-queue limit and job defaults."""

    timezone: str = "America/New_York"
    max_concurrent_jobs: int = Field(default=1, ge=1)
    job_defaults: JobDefaults = JobDefaults()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name such as America/New_York)") from exc
        return value


class ScheduledTask(Strict):
    """One of the seed's six tasks."""

    task_id: int = Field(ge=1, le=6)
    name: str
    function_name: str
    endpoint: str
    enabled: bool = True
    schedule: Schedule
    timeout_minutes: int = Field(gt=0)
    retry_on_failure: bool = False
    max_retries: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _function_matches_id(self) -> ScheduledTask:
        expected = FUNCTION_NAMES[TaskId(self.task_id)]
        if self.function_name != expected:
            raise ValueError(f"task {self.task_id} must have function_name {expected!r}, not {self.function_name!r}")
        return self


class Universe(Strict):
    """The symbols every task covers."""

    symbols: tuple[str, ...] = Field(min_length=1)

    @field_validator("symbols")
    @classmethod
    def _clean_symbols(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in value if not re.fullmatch(r"[A-Z0-9][A-Z0-9.\-]{0,14}", s)]
        if bad:
            raise ValueError(f"symbols must be upper-case tickers, got {bad[:5]}")
        duplicates = sorted({s for s in value if value.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate symbols {duplicates}")
        return value


class History(Strict):
    """How far back a first load goes."""

    start_date: dt.date


class IbkrSettings(Strict):
    """IB Gateway connection (paper gateway defaults to port 4002)."""

    host: str = "127.0.0.1"
    port: int = Field(default=4002, ge=1, le=65535)
    client_id: int = Field(default=17, ge=0)
    timeout_seconds: float = Field(default=10, gt=0)


class YahooSettings(Strict):
    """yfinance request settings."""

    timeout_seconds: float = Field(default=10, gt=0)


class CsvSettings(Strict):
    """A folder of <SYMBOL>.csv files; relative paths are under TURBOMODE_HOME."""

    path: str = "csv"


class SampleSettings(Strict):
    """The built-in synthetic market: its seed and the strength of its planted predictive effect."""

    seed: int = 7
    planted_effect: float = Field(default=0.0, ge=0)


class Sources(Strict):
    """Fallback order and per-source settings."""

    order: tuple[str, ...] = ("ibkr", "yahoo")
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
    """Where features are computed: auto picks cuDF when it imports and a GPU is visible."""

    backend: Literal["auto", "pandas", "cudf"] = "auto"


class Labels(Strict):
    """SELL / HOLD / BUY from the forward return over `horizon` sessions."""

    horizon: int = Field(default=5, ge=1, le=60)
    sell_threshold: float = Field(default=-0.05, lt=0)
    buy_threshold: float = Field(default=0.05, gt=0)


class Learner(Strict):
    """One base learner: `kind` is "xgboost" or a dotted path to a scikit-learn-API classifier."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: str = Field(pattern=r"^(xgboost|[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+)$")
    params: dict[str, object] = Field(default_factory=dict)
    max_rows: int | None = Field(default=None, gt=0)


class Models(Strict):
    """The base learners (empty: the built-in eight), walk-forward folds, seed and SHAP sample size."""

    learners: tuple[Learner, ...] = ()
    n_folds: int = Field(default=4, ge=2, le=12)
    seed: int = 0
    shap_rows: int = Field(default=2000, ge=100)

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

    min_probability: float = Field(default=0.25, gt=0, lt=1)
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
    initial_cash: float = Field(default=1_000_000.0, gt=0)
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


class Settings(Strict):
    """The whole validated configuration."""

    version: str
    global_settings: GlobalSettings
    scheduled_tasks: tuple[ScheduledTask, ...]
    universe: Universe
    history: History
    sources: Sources = Sources()
    compute: Compute = Compute()
    labels: Labels = Labels()
    models: Models = Models()
    scanner: Scanner = Scanner()
    backtest: Backtest = Backtest()

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
    """Duplicate and missing task ids among the configured tasks."""
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    problems = [f"duplicate task_id {i}" for i in duplicates]
    problems += [f"task {t.value} ({t.function_name}) is missing" for t in TaskId if t.value not in ids]
    return problems


def _location(error: dict) -> str:
    return ".".join(str(p) for p in error["loc"]) or "(top level)"


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
            problems.append(f"{_location(error)}: {message}")
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
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read the file: {exc.strerror}"]) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(file), [f"line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"]) from None
    override = os.environ.get("TURBOMODE_SOURCES")
    if override and isinstance(raw, dict):
        raw.setdefault("sources", {})["order"] = [s.strip() for s in override.split(",") if s.strip()]
    return parse_settings(raw, str(file))


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


def dagster_home_env() -> Path | None:
    """DAGSTER_HOME when set (Dagster's own instance folder), else None."""
    env = os.environ.get("DAGSTER_HOME")
    return Path(env) if env else None


@lru_cache(maxsize=8)
def _cached(path: str, sources_override: str | None) -> Settings:
    return load_settings(path)


def settings() -> Settings:
    """The settings for the current environment, read once per (config path, source override)."""
    return _cached(str(config_path()), os.environ.get("TURBOMODE_SOURCES"))
