"""The `turbomode` command: validate a config, run the night or one task, status, start/stop, dagster.yaml.

Runs are created against the TurboMode code location, so the Dagster UI lists them under their jobs;
`run` executes its task in this process, `nightly` each of its tasks in a fresh process of its own
(`night_task`); `status`, `start` and `stop` are the seed's scheduler endpoints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from turbomode_dagster import calendar
from turbomode_dagster.config import (
    ConfigError,
    config_path,
    dagster_home_env,
    load_settings,
    turbomode_home,
)
from turbomode_dagster.console import (
    NIGHTLY_STEPS,
    print_backtest,
    print_drift,
    print_numbers,
    print_signals,
    print_status,
    print_summary,
    print_switches,
)
from turbomode_dagster.night_task import (
    RUN_FAILED,
    catching_up,
    ended_how,
    execute_reported,
    open_home_instance,
    run_step_in_fresh_process,
    sessions_for,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f"config error in {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C between steps (a step's own process reports one during its run)
        print("turbomode: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`turbomode status | head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="turbomode", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    config = commands.add_parser("config", help="configuration commands")
    config_commands = config.add_subparsers(required=True, metavar="ACTION")
    validate = config_commands.add_parser("validate", help="check a scheduler_config.json; list every bad field")
    validate.add_argument("path", nargs="?", help="config file (default: TURBOMODE_CONFIG or the shipped one)")
    validate.set_defaults(handler=_validate)

    nightly = commands.add_parser(
        "nightly",
        help="run the night's tasks for one trading day, in dependency order; Task 1 first catches up every "
        "session missing before it (a fresh home: the whole history), in one run",
    )
    nightly.add_argument("--date", help="the NYSE session, YYYY-MM-DD (default: the latest completed one)")
    nightly.add_argument("--sources", help="comma-separated source order overriding sources.order, e.g. sample")
    nightly.set_defaults(handler=_nightly)

    run = commands.add_parser(
        "run",
        help="run one task now (the seed's POST /scheduler/run_<function>); Task 1 catches up every session "
        "missing before --date in the same run, as the nightly does",
    )
    run.add_argument("task", help="task id 1-6 or function name, e.g. 3 or run_overnight_scanner")
    run.add_argument("--date", help="the NYSE session for a daily task (default: the latest completed one)")
    run.set_defaults(handler=_run)

    status = commands.add_parser("status", help="the scheduler's status: daemon, next runs, last results, errors")
    status.add_argument("--json", action="store_true", help="print the seed's /scheduler/status JSON document")
    status.set_defaults(handler=_status)

    for name, on in (("start", True), ("stop", False)):
        switch = commands.add_parser(name, help=f"switch every TurboMode schedule and sensor {'on' if on else 'off'}")
        switch.set_defaults(handler=_switch, on=on)

    home = commands.add_parser("dagster-home", help="write dagster.yaml for DAGSTER_HOME from the config")
    home.add_argument("folder", nargs="?", help="default: DAGSTER_HOME or <TURBOMODE_HOME>/dagster_home")
    home.add_argument(
        "--storage",
        choices=("sqlite", "postgres"),
        help="where runs, events and schedules live (default: what the folder's dagster.yaml uses; sqlite for a new "
        "one); postgres connects with TURBOMODE_PG_HOST, _PORT, _USER, _PASSWORD and _DB from the environment",
    )
    home.set_defaults(handler=_dagster_home)
    return parser


def _validate(args: argparse.Namespace) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name or key the terminal cannot encode is escaped, not fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    path = Path(args.path) if args.path else config_path()
    try:
        cfg = load_settings(path)
    except ConfigError as exc:
        print(f"{path}: INVALID, {len(exc.problems)} problem(s):")
        for problem in exc.problems:
            print(f"  - {problem}")
        return 1
    enabled = sum(t.enabled for t in cfg.scheduled_tasks)
    print(
        f"{path}: OK ({len(cfg.scheduled_tasks)} tasks, {enabled} enabled; {len(cfg.universe.symbols)} symbols; "
        f"sources {' -> '.join(cfg.sources.order)})"
    )
    return 0


def _dagster_home(args: argparse.Namespace) -> int:
    from turbomode_dagster.config import POSTGRES_ENV
    from turbomode_dagster.orchestration.instance import check_postgres, rendered_storage, write_dagster_home

    folder = Path(args.folder) if args.folder else dagster_home_env() or turbomode_home() / "dagster_home"
    storage = args.storage or rendered_storage(folder / "dagster.yaml")
    cfg = load_settings()
    where = "SQLite files in the folder"
    if storage == "postgres":  # the server is tried (and Dagster's tables created) before the file is written
        where = f"PostgreSQL {check_postgres(cfg)}, credentials read from {', '.join(POSTGRES_ENV.values())}"
    file = write_dagster_home(cfg, folder, storage)
    print(f"wrote {file} (storage: {where}); use it with: export DAGSTER_HOME={folder}")
    return 0


def _nightly(args: argparse.Namespace) -> int:
    if args.sources:
        os.environ["TURBOMODE_SOURCES"] = args.sources
    cfg = load_settings()
    day = _night(args.date, cfg.history.start_date)
    if day is None:
        return 2
    home = turbomode_home()
    print(f"TurboMode nightly for {day}: home {home}, sources {' -> '.join(cfg.sources.order)}", flush=True)
    outcomes = []
    for number, step in enumerate(NIGHTLY_STEPS, start=1):
        task = cfg.task(step.task)
        started = time.monotonic()
        code = run_step_in_fresh_process(number, day)
        outcomes.append((task, code == 0, time.monotonic() - started))
        if code not in (0, RUN_FAILED):
            print(f"Task {task.task_id} {task.function_name}: {ended_how(code)}", file=sys.stderr)
        if code != 0:
            break
    print_summary(cfg, day, home, outcomes)
    if len(outcomes) == len(NIGHTLY_STEPS) and all(ok for _, ok, _ in outcomes):
        print_signals(home, day)
        print_backtest(home, day)
        print_drift(home, day)
    return 0 if all(ok for _, ok, _ in outcomes) and len(outcomes) == len(NIGHTLY_STEPS) else 1


def _run(args: argparse.Namespace) -> int:
    from turbomode_dagster.definitions import build_definitions
    from turbomode_dagster.orchestration.launch import UnknownTask, resolve_task, task_job

    cfg = load_settings()
    try:
        task = resolve_task(args.task, cfg.scheduled_tasks)
        job = task_job(build_definitions(cfg), task)
    except UnknownTask as exc:
        print(f"turbomode run: {exc}", file=sys.stderr)
        return 2
    if job.partitions_def is None:
        if args.date:
            print(f"--date: task {task.task_id} ({task.function_name}) is not run per session", file=sys.stderr)
            return 2
        day = None
    elif (day := _night(args.date, cfg.history.start_date)) is None:
        return 2
    home = turbomode_home()
    instance = open_home_instance(cfg, home)
    sessions = sessions_for(instance, job, cfg, day, home) if day else None
    about = f" for {day}{catching_up(sessions)}" if day else ""
    print(f"Task {task.task_id} {task.function_name} ({task.name}){about}: home {home}")
    result = execute_reported(instance, job, sessions, home)
    if result.success:
        print_numbers(result, task.task_id)
    return 0 if result.success else 1


def _status(args: argparse.Namespace) -> int:
    from turbomode_dagster.orchestration.control import turbomode_repository
    from turbomode_dagster.orchestration.status import scheduler_status

    cfg = load_settings()
    home = turbomode_home()
    instance = open_home_instance(cfg, home)
    with turbomode_repository(instance) as repository:
        document = scheduler_status(instance, cfg, repository, home, dt.datetime.now(dt.timezone.utc))
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_status(document, cfg.global_settings.timezone)
    return 0


def _switch(args: argparse.Namespace) -> int:
    from turbomode_dagster.orchestration.control import switch_all, turbomode_repository

    cfg = load_settings()
    instance = open_home_instance(cfg, turbomode_home())
    with turbomode_repository(instance) as repository:
        switches = switch_all(instance, repository, on=args.on)
    print_switches(switches, args.on)
    return 0


def _night(requested: str | None, history_start: dt.date) -> str | None:
    """The session to run: the requested one, or the latest whose close has passed; never before the history."""
    if requested is None:
        return calendar.latest_completed_session(dt.datetime.now(dt.timezone.utc))
    try:
        day = calendar.as_date(requested)
    except ValueError as exc:
        print(f"--date: {exc}", file=sys.stderr)
        return None
    if day < history_start:
        print(f"--date: {day} is before history.start_date {history_start}, the first partition", file=sys.stderr)
        return None
    if not calendar.is_session(day):
        print(
            f"--date: {day} is not an NYSE session; the previous session is {calendar.previous_session(day)}",
            file=sys.stderr,
        )
        return None
    return day.isoformat()


if __name__ == "__main__":
    sys.exit(main())
