"""Run `turbomode nightly` as a subprocess and measure it: wall time, peak memory and bytes written, per task.

Shared by `nightly_scale.py` (500 / 3,000 symbols) and `storage_growth.py` (83 symbols, 20 nights):

* `RssSampler` samples the resident set size of the nightly process plus what its descendants hold of their
  own every 0.5 s (psutil), and the bytes they caused to be written to disk (`/proc/<pid>/io` `write_bytes`, the
  last value seen per process, so a step process that ended still counts once it was sampled);
* the nightly's own progress lines (`[2/5] Task 2 run_orchestrator (...) ...` then `      done in 54.9 s;`)
  mark when each task starts and ends as they stream; at each mark the size of TURBOMODE_HOME is taken
  (file sizes by folder: "bytes added" is what stays, net of anything removed), so samples and bytes are
  attributed to the task running at that moment;
* after the night, the Dagster run records in DAGSTER_HOME give each task's run start and end as Dagster
  recorded them, and `os.wait4` gives the kernel's figures for the whole night: the peak RSS of its
  largest process (exact, where the sampled figure is a sum over the tree every 0.5 s) and the bytes it
  and its children wrote to disk.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from turbomode_dagster import calendar
from turbomode_dagster.config import SHIPPED_CONFIG

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1_000_000
SAMPLE_INTERVAL_S = 0.5
OUTPUT_HEAD, OUTPUT_TAIL = 80, 10  # lines of the nightly's output kept in the results (the tasks, the end)
# The lines `turbomode nightly` prints around each task (turbomode_dagster/cli.py, `_nightly` and `_execute`).
TASK_START = re.compile(
    r"^\[(?P<number>\d+)/(?P<steps>\d+)\] Task (?P<task_id>\d+) (?P<function>\S+) \((?P<name>.*)\) \.\.\.$"
)
TASK_END = re.compile(r"^\s+(?P<outcome>done|FAILED) in (?P<seconds>\d+(?:\.\d+)?) s;")
# Variables that would point the nightly at something other than the benchmark's own home and source.
CLEARED_ENV = ("TURBOMODE_DASK_SCHEDULER", "TURBOMODE_FAILURE_WEBHOOK", "DAGSTER_HOME", "TURBOMODE_CONFIG")


# ---------------------------------------------------------------- the nightly's output


@dataclass(frozen=True)
class TaskStart:
    """`[n/N] Task <id> <function> (<name>) ...`: the nightly starts a task's run."""

    task_id: int
    function: str
    name: str


@dataclass(frozen=True)
class TaskEnd:
    """`      done in <s> s; ...` (or FAILED): the task's run has ended, after the nightly's own timing."""

    ok: bool
    seconds: float


def parse_line(line: str) -> TaskStart | TaskEnd | None:
    """The task boundary a line of `turbomode nightly`'s output marks, or None for any other line."""
    line = line.rstrip("\n")
    if start := TASK_START.match(line):
        return TaskStart(int(start["task_id"]), start["function"], start["name"])
    if end := TASK_END.match(line):
        return TaskEnd(end["outcome"] == "done", float(end["seconds"]))
    return None


# ---------------------------------------------------------------- memory and disk writes of a process tree


class RssSampler(threading.Thread):
    """Samples the memory of process `pid` and its descendants, and their disk writes, every `interval` s.

    `samples` holds (unix time, bytes): the RSS of `pid` plus the unique set (USS, pages no other process
    maps) of each descendant, so a child just forked, which shares its parent's pages until it execs
    (a subprocess started from the nightly), is not counted twice as a plain sum of RSS would.
    Writes are `/proc/<pid>/io` `write_bytes` (bytes the processes
    caused to be sent to the block layer, counted when pages are dirtied), the latest value per process
    summed over every process seen, so a child that exits keeps what it wrote up to its last sample.
    With `limit_bytes`, a sample above it kills the whole tree (on a shared machine, before the kernel's
    out-of-memory killer picks a victim) and is kept in `exceeded`.
    """

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL_S, limit_bytes: int | None = None) -> None:
        super().__init__(daemon=True, name=f"rss-sampler-{pid}")
        self.root = psutil.Process(pid)
        self.interval = interval
        self.limit_bytes = limit_bytes
        self.exceeded: int | None = None
        self.samples: list[tuple[float, int]] = []
        self._written: dict[tuple[int, float], int] = {}  # (pid, create_time) -> write_bytes last seen
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> int:
        """Take one sample now (also called at task boundaries); returns the tree's memory in bytes."""
        rss, tree = 0, self._tree()
        for process in tree:
            try:
                with process.oneshot():
                    rss += process.memory_info().rss if process is self.root else process.memory_full_info().uss
                    key = (process.pid, process.create_time())
                    written = process.io_counters().write_bytes
            except psutil.Error:  # ended (or a zombie) between the listing and the read
                continue
            with self._lock:
                self._written[key] = written
        with self._lock:
            self.samples.append((time.time(), rss))
        if self.limit_bytes is not None and rss > self.limit_bytes and self.exceeded is None:
            self.exceeded = rss
            for process in tree:
                try:
                    process.kill()
                except psutil.Error:
                    continue
        return rss

    def written_bytes(self) -> int:
        """Disk writes of the tree so far, as last sampled."""
        with self._lock:
            return sum(self._written.values())

    def stop(self) -> None:
        """End the sampling thread and wait for it."""
        self._stop_event.set()
        self.join()

    def peak(self, start: float = float("-inf"), end: float = float("inf")) -> int:
        """The highest sampled RSS between unix times `start` and `end` (0 if no sample fell there)."""
        with self._lock:
            return max((rss for t, rss in self.samples if start <= t <= end), default=0)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []


# ---------------------------------------------------------------- what the home holds

DB_SUFFIXES = ("-wal", "-shm", "-journal")


def size_group(relative: Path) -> str:
    """The group a file under TURBOMODE_HOME counts in: its top folder (`models`, `dagster_home`), one level
    deeper under `assets/` (`assets/feature_panel`), a SQLite file with its WAL and shared memory
    (`market_data.db`), or the file's own name at the top."""
    parts = relative.parts
    if parts[0] == "assets" and len(parts) > 2:
        return f"assets/{parts[1]}"
    top = parts[0]
    for suffix in DB_SUFFIXES:
        if top.endswith(".db" + suffix):
            return top[: -len(suffix)]
    return top


def home_sizes(home: Path) -> dict[str, int]:
    """Bytes (file sizes, links not followed) under `home` by `size_group`; empty when `home` does not exist."""
    sizes: dict[str, int] = {}
    for folder, _, files in os.walk(home):
        for name in files:
            path = Path(folder, name)
            try:
                info = path.lstat()
            except FileNotFoundError:  # removed while we walked (a temporary, a rotated WAL)
                continue
            if not stat.S_ISLNK(info.st_mode):
                group = size_group(path.relative_to(home))
                sizes[group] = sizes.get(group, 0) + info.st_size
    return dict(sorted(sizes.items()))


def size_change(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Bytes added per group from `before` to `after` (negative where something was removed or shrank)."""
    return {group: after.get(group, 0) - before.get(group, 0) for group in sorted(before.keys() | after.keys())}


# ---------------------------------------------------------------- configs and nights


def shipped_config() -> dict:
    """The shipped scheduler_config.json, decoded."""
    return json.loads(SHIPPED_CONFIG.read_text())


def universe(symbols: int) -> list[str]:
    """`symbols` names: the shipped 83 first (so 83 is the shipped universe), then S0000, S0001, ... which the
    sample market serves too (sectors picked from a digest of the name), as the other benchmarks name them."""
    if symbols < 1:
        raise ValueError(f"--symbols must be at least 1, not {symbols}")
    shipped = shipped_config()["universe"]["symbols"]
    return [*shipped[:symbols], *(f"S{i:04d}" for i in range(symbols - len(shipped)))]


def history_start(first_night: str, years: float) -> str:
    """The first NYSE session on or after `years` years before `first_night`."""
    if years <= 0:
        raise ValueError(f"--years must be positive, not {years}")
    first = calendar.as_date(first_night)
    return calendar.sessions(first - dt.timedelta(days=round(years * 365.25)), first)[0]


def night_sessions(first: str | None, nights: int, now: dt.datetime) -> list[str]:
    """`nights` consecutive NYSE sessions from `first`, or ending at the latest completed one when `first` is None.

    A night after the latest completed session is refused: it would ingest the sample market's future.
    """
    if nights < 1:
        raise ValueError(f"--nights must be at least 1, not {nights}")
    latest = calendar.latest_completed_session(now)
    if first is None:
        days = [latest]
        while len(days) < nights:
            days.insert(0, calendar.previous_session(days[0]))
        return days
    if not calendar.is_session(first):
        raise ValueError(f"--date {first} is not an NYSE session")
    days = [calendar.as_date(first).isoformat()]
    while len(days) < nights:
        days.append(calendar.next_session(days[-1]))
    if days[-1] > latest:
        raise ValueError(
            f"{nights} night(s) from {days[0]} end on {days[-1]}, after the latest completed session {latest}; "
            "pick an earlier --date"
        )
    return days


def write_config(path: Path, patches: dict[str, object]) -> Path:
    """The shipped config with dotted keys (`universe.symbols`) set, written to `path`."""
    raw = shipped_config()
    for dotted, value in patches.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    path.write_text(json.dumps(raw, indent=2))
    return path


# ---------------------------------------------------------------- one night, measured


@dataclass
class TaskMeasure:
    """One task of a night: its times, sampled peak RSS, home growth and disk writes while it ran."""

    task_id: int
    function: str
    name: str
    started: float
    ended: float | None = None
    ok: bool | None = None
    wall_s: float | None = None  # the nightly's own "done in" seconds
    run_s: float | None = None  # Dagster's run record: start to end
    rss_start_bytes: int = 0  # what the tree held when the task started (Python rarely gives memory back)
    peak_rss_bytes: int = 0
    bytes_added: dict[str, int] = field(default_factory=dict)
    disk_write_bytes: int = 0

    def as_json(self, origin: float) -> dict:
        """The record with its start and end in seconds after `origin` (the night's start), and its total bytes."""
        return {
            **asdict(self),
            "started": round(self.started - origin, 2),
            "ended": None if self.ended is None else round(self.ended - origin, 2),
            "bytes_added_total": sum(self.bytes_added.values()),
        }


@dataclass
class NightMeasure:
    """One `turbomode nightly --date` run: whole-night figures, its tasks, and Dagster's view of its runs."""

    session: str
    command: list[str]
    exit_code: int
    started: float
    wall_s: float
    peak_rss_bytes: int  # the kernel's high-water mark of the largest process (os.wait4)
    peak_tree_rss_bytes: int  # the sampled sum over the process tree
    sizes_before: dict[str, int]
    sizes_after: dict[str, int]
    disk_write_bytes: int
    load_average_before: tuple[float, float, float]
    load_average_after: tuple[float, float, float]
    tasks: list[TaskMeasure]
    dagster_runs: list[dict]
    rss_samples: list[tuple[float, int]]
    output_head: list[str]
    output_tail: list[str]
    warnings: list[str]

    @property
    def bytes_added(self) -> dict[str, int]:
        """Bytes added to the home by this night, per group."""
        return size_change(self.sizes_before, self.sizes_after)

    def as_json(self) -> dict:
        """The night as a JSON-ready dict (times relative to the night's start, sizes in bytes)."""
        return {
            "session": self.session,
            "command": self.command,
            "exit_code": self.exit_code,
            "started_utc": dt.datetime.fromtimestamp(self.started, dt.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(self.wall_s, 2),
            "outside_tasks_s": round(self.wall_s - sum(t.wall_s or 0.0 for t in self.tasks), 2),
            "peak_rss_bytes": self.peak_rss_bytes,
            "peak_tree_rss_bytes": self.peak_tree_rss_bytes,
            "home_bytes_before": sum(self.sizes_before.values()),
            "home_bytes_after": sum(self.sizes_after.values()),
            "bytes_added_total": sum(self.bytes_added.values()),
            "bytes_added": self.bytes_added,
            "sizes_after": self.sizes_after,
            "disk_write_bytes": self.disk_write_bytes,
            "load_average_before": self.load_average_before,
            "load_average_after": self.load_average_after,
            "tasks": [t.as_json(self.started) for t in self.tasks],
            "dagster_runs": self.dagster_runs,
            "rss_samples": [[round(t - self.started, 2), rss] for t, rss in self.rss_samples],
            "output_head": self.output_head,
            "output_tail": self.output_tail,
            "warnings": self.warnings,
        }


def nightly_env(home: Path, config: Path) -> dict[str, str]:
    """The environment of a measured nightly: this one, pointed at `home`, its Dagster home and `config`."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env.update(
        TURBOMODE_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        TURBOMODE_CONFIG=str(config),
        TURBOMODE_SOURCES="sample",
        PYTHONUNBUFFERED="1",
    )
    return env


def run_night(
    session: str,
    home: Path,
    config: Path,
    echo: Callable[[str], None] = print,
    interval: float = SAMPLE_INTERVAL_S,
    command: list[str] | None = None,
    max_rss_bytes: int | None = None,
) -> NightMeasure:
    """Run `turbomode nightly --date session` (or `command`, printing the same lines) on `home` with `config`,
    and measure it as it streams; stop it if its process tree holds more than `max_rss_bytes`."""
    command = command or [sys.executable, "-m", "turbomode_dagster.cli", "nightly", "--date", session]
    home.mkdir(parents=True, exist_ok=True)
    sizes_before, load_before = home_sizes(home), os.getloadavg()
    started = time.time()
    process = subprocess.Popen(
        command, env=nightly_env(home, config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    sampler = RssSampler(process.pid, interval, max_rss_bytes)
    sampler.start()
    try:
        tasks, lines = _follow(process, sampler, home, echo)
    except BaseException:  # the benchmark was interrupted: do not leave the nightly running on its own
        process.kill()
        raise
    finally:
        sampler.stop()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    wall = time.time() - started
    warnings = [] if tasks else ["no task lines parsed: has the format of `turbomode nightly`'s output changed?"]
    if sampler.exceeded is not None:
        warnings.append(f"stopped: the process tree held {gb(sampler.exceeded)} GB, over --max-rss {gb(max_rss_bytes)}")
    elif process.returncode < 0:
        warnings.append(f"killed by signal {-process.returncode} (9 is also what the out-of-memory killer sends)")
    try:
        runs = dagster_runs(home / "dagster_home", started)
    except Exception as exc:  # keep the night's figures though Dagster's records could not be read
        runs = []
        warnings.append(f"Dagster's run records could not be read: {type(exc).__name__}: {exc}")
    match_runs(tasks, runs, session)
    return NightMeasure(
        session=session,
        command=command,
        exit_code=process.returncode,
        started=started,
        wall_s=wall,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # Linux reports kilobytes
        peak_tree_rss_bytes=sampler.peak(),
        sizes_before=sizes_before,
        sizes_after=home_sizes(home),
        disk_write_bytes=usage.ru_oublock * 512,  # the kernel's count (write_bytes / 512), children included
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        tasks=tasks,
        dagster_runs=runs,
        rss_samples=sampler.samples,
        output_head=lines[:OUTPUT_HEAD],
        output_tail=lines[OUTPUT_HEAD:][-OUTPUT_TAIL:],
        warnings=warnings,
    )


def _follow(
    process: subprocess.Popen, sampler: RssSampler, home: Path, echo: Callable[[str], None]
) -> tuple[list[TaskMeasure], list[str]]:
    """Read the nightly's output to its end; at each task's start and end take a sample and the home's size."""
    tasks: list[TaskMeasure] = []
    lines: list[str] = []
    task_sizes: dict[str, int] = {}
    task_written = 0
    assert process.stdout is not None
    for line in process.stdout:
        now = time.time()
        lines.append(line.rstrip("\n"))
        echo(f"  | {lines[-1]}")
        mark = parse_line(line)
        if isinstance(mark, TaskStart):
            rss = sampler.sample()
            if not tasks:  # later tasks start from where the one before ended, so no byte falls between them
                task_sizes, task_written = home_sizes(home), sampler.written_bytes()
            tasks.append(TaskMeasure(mark.task_id, mark.function, mark.name, started=now, rss_start_bytes=rss))
        elif isinstance(mark, TaskEnd) and tasks and tasks[-1].ended is None:
            sampler.sample()
            task = tasks[-1]
            task.ended, task.ok, task.wall_s = now, mark.ok, mark.seconds
            task.peak_rss_bytes = sampler.peak(task.started, now)
            sizes, written = home_sizes(home), sampler.written_bytes()
            task.bytes_added = size_change(task_sizes, sizes)
            task.disk_write_bytes = written - task_written
            task_sizes, task_written = sizes, written
    return tasks, lines


def dagster_runs(dagster_home: Path, since: float) -> list[dict]:
    """The runs created in `dagster_home`'s instance from unix time `since` on, oldest first: job, partition,
    status, and Dagster's start and end (seconds after `since`)."""
    import dagster as dg

    if not (dagster_home / "dagster.yaml").exists():
        return []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(
            filters=dg.RunsFilter(created_after=dt.datetime.fromtimestamp(since, dt.timezone.utc))
        )
    runs = []
    for record in sorted(records, key=lambda r: r.create_timestamp):
        start, end = record.start_time, record.end_time
        runs.append(
            {
                "job": record.dagster_run.job_name,
                "partition": record.dagster_run.tags.get("dagster/partition"),
                "status": record.dagster_run.status.value,
                "start_s": None if start is None else round(start - since, 3),
                "end_s": None if end is None else round(end - since, 3),
                "run_s": None if start is None or end is None else round(end - start, 3),
            }
        )
    return runs


def match_runs(tasks: Iterable[TaskMeasure], runs: list[dict], session: str) -> None:
    """Give each task the run time of its job's latest run for `session` (the nightly runs one per task)."""
    by_job = {run["job"]: run for run in runs if run["partition"] == session}
    for task in tasks:
        if (run := by_job.get(task.function)) is not None:
            task.run_s = run["run_s"]


# ---------------------------------------------------------------- homes, results, tables


class BenchHome:
    """The TURBOMODE_HOME a benchmark measures and its config (in a scratch folder, outside the home so it is not
    counted): `--home` as given (kept), or a fresh temporary folder, removed at the end unless `keep`."""

    def __init__(self, home: Path | None, keep: bool = False) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="turbomode_bench_")
        scratch = Path(self._scratch.name)
        self.config = scratch / "scheduler_config.json"
        self.home = scratch / "home" if home is None else home.resolve()
        self.fresh = not self.home.exists() or not any(self.home.iterdir())
        self._keep_scratch = keep and home is None

    def __enter__(self) -> BenchHome:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._keep_scratch:
            print(f"home kept at {self.home}")
        else:
            self._scratch.cleanup()


def run_nights(
    sessions: list[str], home: Path, config: Path, max_rss_bytes: int | None = None
) -> Iterator[NightMeasure]:
    """Run the nights in order, yielding each measured night; stop after a night that failed."""
    for number, session in enumerate(sessions, start=1):
        print(f"night {number}/{len(sessions)}: turbomode nightly --date {session} (home {home})", flush=True)
        night = run_night(session, home, config, max_rss_bytes=max_rss_bytes)
        yield night
        if night.exit_code != 0:
            print(f"night {number} ({session}) exited {night.exit_code}; stopping. {' '.join(night.warnings)}")
            return


def add_night_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both nightly benchmarks take: --date, --home, --keep-home, --max-rss."""
    parser.add_argument("--date", help="the first night's NYSE session (default: nights end at the latest completed)")
    parser.add_argument("--home", type=Path, help="TURBOMODE_HOME to use and keep (default: a temporary folder)")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary home and print its path")
    parser.add_argument(
        "--max-rss", type=float, metavar="GB", help="stop a night whose processes hold more (GB, 10^9 bytes)"
    )


def max_rss_bytes(args: argparse.Namespace) -> int | None:
    """--max-rss in bytes, or None when not given."""
    return None if args.max_rss is None else int(args.max_rss * 1e9)


def machine() -> dict:
    """What the figures were measured on, and which revision of the code ran."""
    import turbomode_dagster

    checkout = Path(turbomode_dagster.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "code": str(checkout),
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "measured_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(path: Path, document: dict) -> None:
    """Write a benchmark's JSON document, creating the results folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}")


def mb(value: float) -> str:
    """Bytes as megabytes (10^6) with one decimal, signed when negative."""
    return f"{value / MB:,.1f}"


def gb(value: float) -> str:
    """Bytes as gigabytes (10^9) with two decimals."""
    return f"{value / 1e9:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table: text columns left, numeric ones (`1.25`, `1.25 (Task 2)`) right, judged on the
    first row."""
    numeric = [bool(re.fullmatch(r"[-+]?[\d,.]+( \(Task \d+\))?", cell)) for cell in rows[0]] if rows else []
    rule = ["---:" if right else "---" for right in numeric] or ["---"] * len(header)
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
