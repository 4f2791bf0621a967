"""One task's run from the command line: the sessions it covers, its console lines, and the fresh process
each step of `turbomode nightly` runs in.

`turbomode nightly` starts `python -m turbomode_dagster.night_task --step N --date D` for each step, as
the Dagster daemon starts a fresh process for each run it launches: what one task leaves in its process
(allocator pools, caches, frames not yet handed back to the system) is not the next task's baseline, and
the night's peak memory is the largest task's, not their sum. The child prints the step's lines, which
the parent passes on as they come, and exits 0 (the run succeeded), 1 (it failed) or 2 (bad arguments).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from turbomode_dagster import calendar
from turbomode_dagster.config import ConfigError, Settings, settings, turbomode_home
from turbomode_dagster.console import NIGHTLY_STEPS, describe_run, print_failure

if TYPE_CHECKING:  # Dagster is imported only by the step that runs, not by the parent `turbomode nightly`
    from dagster._core.execution.job_execution_result import JobExecutionResult

RUN_FAILED = 1
BAD_ARGUMENTS = 2
INTERRUPTED = 130  # as shells report a command ended by Ctrl-C


def open_home_instance(cfg: Settings, home: Path):
    """The persistent Dagster instance: DAGSTER_HOME, or the one under TURBOMODE_HOME."""
    from turbomode_dagster.orchestration.instance import open_instance, prepare_dagster_home

    return open_instance(prepare_dagster_home(cfg, home))


def sessions_for(instance, job, cfg: Settings, day: str, home: Path) -> tuple[str, str]:
    """The sessions the job's run covers: from the first of its session-keyed partitions missing before `day`
    (in the instance's records or in `home`)."""
    from turbomode_dagster.orchestration.partitions import catch_up_range

    keys = list(job.asset_layer.selected_asset_keys)
    return catch_up_range(instance, keys, cfg.history.start_date, day, home)


def catching_up(sessions: tuple[str, str] | None) -> str:
    """' (catching up ...)' when the run covers more than its night, else ''."""
    if sessions is None or sessions[0] == sessions[1]:
        return ""
    first, last = sessions
    count = len(calendar.sessions(first, last))
    return f" (catching up {first}...{last}, {count} sessions, in one run)"


def execute_reported(instance, job, sessions: tuple[str, str] | None, home: Path) -> JobExecutionResult:
    """Run one task's job attached to the code location; print its line, and record it when it fails.

    A run over more than one session shows its own progress (Dagster's console at INFO)."""
    from turbomode_dagster.orchestration.failures import record_failed_result
    from turbomode_dagster.orchestration.launch import execute_attached

    started = time.monotonic()
    first, last = sessions or (None, None)
    result = execute_attached(instance, job, first, last, show_progress=first != last)
    seconds = time.monotonic() - started
    print(f"      {'done' if result.success else 'FAILED'} in {seconds:.1f} s; {describe_run(result)}", flush=True)
    if not result.success:
        print_failure(result)
        record_failed_result(result, home)
    return result


def run_step(number: int, day: str) -> int:
    """Step `number` (1-based) of the night for session `day`, in this process: its header, its run, its line.

    The code location's module-level `defs` (built once at import from this environment's settings) is
    the one used: building the definitions a second time cost 1-1.5 s a step."""
    cfg = settings()
    from turbomode_dagster.definitions import defs

    task = cfg.task(NIGHTLY_STEPS[number - 1].task)
    job = defs.resolve_job_def(task.function_name)
    home = turbomode_home()
    instance = open_home_instance(cfg, home)
    sessions = sessions_for(instance, job, cfg, day, home)
    print(
        f"[{number}/{len(NIGHTLY_STEPS)}] Task {task.task_id} {task.function_name} ({task.name})"
        f"{catching_up(sessions)} ...",
        flush=True,
    )
    result = execute_reported(instance, job, sessions, home)
    return 0 if result.success else RUN_FAILED


def run_step_in_fresh_process(number: int, day: str) -> int:
    """Step `number` of the night in a new Python process, its output passed on line by line; its exit code
    (negative: the signal that ended it)."""
    command = [sys.executable, "-m", "turbomode_dagster.night_task", "--step", str(number), "--date", day]
    # The child leads a process group of its own, so a terminal's Ctrl-C reaches this process alone and is
    # passed on to the child only: Dagster's helper processes under it (compute-log watchers) would
    # otherwise each print a KeyboardInterrupt traceback.
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, start_new_session=True
    ) as child:
        errors = threading.Thread(target=_pass_on, args=(child.stderr, sys.stderr), daemon=True)
        errors.start()
        while True:
            try:
                _pass_on(child.stdout, sys.stdout)
                break
            except KeyboardInterrupt:  # the child ends its run (Dagster marks it failed), says so and exits
                child.send_signal(signal.SIGINT)
        errors.join()
    return child.returncode


def ended_how(code: int) -> str:
    """How a step's process ended, for an exit code that is neither success nor a failed run."""
    if code == INTERRUPTED:
        return "interrupted (Ctrl-C); the night stops here"
    if code >= 0:
        return f"its process exited with code {code}"
    name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
    hint = " (the kernel's out-of-memory killer sends SIGKILL: see the memory figures in the README)"
    return f"its process was killed by {name}" + (hint if -code == signal.SIGKILL else "")


def _pass_on(source: TextIO, sink: TextIO) -> None:
    """Copy `source` line by line to `sink` as the lines come (a night's catch-up shows its progress)."""
    for line in source:
        sink.write(line)
        sink.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process `turbomode nightly` starts for each step."""
    parser = argparse.ArgumentParser(prog="python -m turbomode_dagster.night_task", description=__doc__)
    parser.add_argument("--step", type=int, required=True, choices=range(1, len(NIGHTLY_STEPS) + 1))
    parser.add_argument("--date", required=True, help="the night's NYSE session, YYYY-MM-DD")
    args = parser.parse_args(argv)
    try:
        day = calendar.as_date(args.date).isoformat()
    except ValueError as exc:
        print(f"--date: {exc}", file=sys.stderr)
        return BAD_ARGUMENTS
    try:
        return run_step(args.step, day)
    except ConfigError as exc:
        print(f"config error in {exc}", file=sys.stderr)
        return RUN_FAILED
    except KeyboardInterrupt:  # before or after the run (Dagster turns one during the run into a failed run)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
