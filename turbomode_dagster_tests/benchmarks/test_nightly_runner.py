"""The nightly benchmarks' instruments: the output parser, the process-tree sampler, home sizes, nights, and one
measured night of a stand-in nightly that prints the real command's lines."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from nightly_runner import (
    BenchHome,
    RssSampler,
    TaskEnd,
    TaskStart,
    history_start,
    home_sizes,
    markdown_table,
    night_sessions,
    parse_line,
    run_night,
    size_change,
    size_group,
    universe,
    write_config,
)

from turbomode_dagster.config import SHIPPED_CONFIG

# Lines as `turbomode nightly` printed them on 20 symbols x 2 years.
NIGHTLY_OUTPUT = """\
TurboMode nightly for 2026-12-01: home /tmp/meas_try/home, sources sample
[1/5] Task 1 run_ingestion (Master Market Data Ingestion) ...
      done in 0.9 s; bars by source {'sample': 20}, range 2026-12-01 .. 2026-12-01, quarantined 0, failed symbols: none
[2/5] Task 2 run_orchestrator (TurboMode Training Orchestrator) ...
      FAILED in 22.7 s; feature_panel {'rows': 10020, 'backend': 'pandas'}

Summary for 2026-12-01:
  Task 1 run_ingestion            ok         0.9 s
  Task 2 run_orchestrator         FAILED    22.7 s
  TXN     HOLD    0.92  atr_14_to_close +0.32, book_to_price +0.06, range_to_close +0.04
"""


def test_the_parser_finds_each_task_start_and_end_and_nothing_else() -> None:
    marks = [mark for line in NIGHTLY_OUTPUT.splitlines(keepends=True) if (mark := parse_line(line))]
    assert marks == [
        TaskStart(1, "run_ingestion", "Master Market Data Ingestion"),
        TaskEnd(True, 0.9),
        TaskStart(2, "run_orchestrator", "TurboMode Training Orchestrator"),
        TaskEnd(False, 22.7),
    ]


ALLOCATE = """\
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
block = b"\\x01" * 80_000_000
grandchild.wait()
time.sleep(0.4)
"""
GRANDCHILD = """\
import sys, time
block = b"\\x02" * 120_000_000
with open(sys.argv[1], "wb") as f:
    f.write(b"\\x03" * 8_000_000)
time.sleep(1.2)
"""


def test_the_sampler_sums_the_tree_and_keeps_what_an_ended_child_wrote(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", ALLOCATE, GRANDCHILD, str(tmp_path / "out.bin")])
    sampler = RssSampler(process.pid, interval=0.1)
    sampler.start()
    process.wait()
    sampler.stop()
    # 80 MB in the child and 120 MB in the grandchild at once, plus two interpreters (about 10-30 MB each).
    assert 200e6 <= sampler.peak() < 300e6
    assert sampler.written_bytes() >= 8_000_000  # the grandchild had ended before the last sample
    first = sampler.samples[0][0]
    assert sampler.peak(first - 10, first - 5) == 0  # no sample in that window


FORK = """\
import os, time
block = b"\\x01" * 150_000_000
if os.fork() == 0:  # the child shares every page of the block and touches none
    time.sleep(1.0)
    os._exit(0)
os.wait()
"""


def test_the_sampler_does_not_count_a_forked_childs_shared_pages_twice() -> None:
    process = subprocess.Popen([sys.executable, "-c", FORK])
    sampler = RssSampler(process.pid, interval=0.1)
    sampler.start()
    process.wait()
    sampler.stop()
    assert 150e6 <= sampler.peak() < 220e6  # a sum of RSS would be over 300 MB


def test_the_sampler_stops_a_tree_over_its_limit() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; b = b'x' * 200_000_000; time.sleep(30)"])
    sampler = RssSampler(process.pid, interval=0.1, limit_bytes=100_000_000)
    sampler.start()
    started = time.monotonic()
    assert process.wait(timeout=20) == -9
    sampler.stop()
    assert time.monotonic() - started < 10
    assert sampler.exceeded is not None and sampler.exceeded > 100_000_000


def test_home_sizes_group_by_top_folder_asset_and_database(tmp_path: Path) -> None:
    files = {
        "models/tm-1/meta.json": 10,
        "models/tm-1/base/xgb.json": 20,
        "assets/feature_panel/2026-12-01.parquet": 30,
        "assets/oof_predictions/2026-12-01.parquet": 40,
        "market_data.db": 50,
        "market_data.db-wal": 60,
        "market_data.db-shm": 7,
        "dagster_home/history/runs.db": 80,
        "notes.txt": 9,
    }
    for name, size in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * size)
    before = home_sizes(tmp_path)
    assert before == {
        "assets/feature_panel": 30,
        "assets/oof_predictions": 40,
        "dagster_home": 80,
        "market_data.db": 117,
        "models": 30,
        "notes.txt": 9,
    }
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "models/tm-2").mkdir()
    (tmp_path / "models/tm-2/meta.json").write_bytes(b"y" * 5)
    assert size_change(before, home_sizes(tmp_path)) == {
        "assets/feature_panel": 0,
        "assets/oof_predictions": 0,
        "dagster_home": 0,
        "market_data.db": 0,
        "models": 5,
        "notes.txt": -9,
    }
    (tmp_path / "link.db").symlink_to(tmp_path / "market_data.db")  # not counted twice
    assert "link.db" not in home_sizes(tmp_path)
    assert size_group(Path("assets/loose.parquet")) == "assets"
    assert home_sizes(tmp_path / "absent") == {}


def test_the_universe_is_the_shipped_one_first_then_numbered_symbols() -> None:
    shipped = json.loads(SHIPPED_CONFIG.read_text())["universe"]["symbols"]
    assert universe(20) == shipped[:20]
    assert universe(len(shipped)) == shipped
    assert universe(len(shipped) + 2) == [*shipped, "S0000", "S0001"]
    with pytest.raises(ValueError, match="at least 1"):
        universe(0)


NOW = dt.datetime(2026, 12, 2, 16, 0, tzinfo=dt.timezone.utc)  # Wednesday; Tuesday's close has passed


def test_nights_end_at_the_latest_completed_session_or_start_at_the_date() -> None:
    assert night_sessions(None, 3, NOW) == ["2026-11-27", "2026-11-30", "2026-12-01"]
    assert night_sessions("2026-11-25", 2, NOW) == ["2026-11-25", "2026-11-27"]  # over Thanksgiving
    with pytest.raises(ValueError, match="after the latest completed session 2026-12-01"):
        night_sessions("2026-11-30", 3, NOW)
    with pytest.raises(ValueError, match="not an NYSE session"):
        night_sessions("2026-11-26", 1, NOW)


def test_history_starts_at_the_first_session_years_before() -> None:
    assert history_start("2026-11-30", 2) == "2024-12-02"  # 730 days back is Saturday 2024-11-30
    assert history_start("2026-01-05", 1) == "2025-01-06"  # 365 days back is Sunday 2025-01-05
    assert history_start("2026-12-01", 0.5) == "2026-06-01"  # 183 days back is Monday 2026-06-01


def test_the_config_is_the_shipped_one_with_the_patches(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.json", {"universe.symbols": ["AAPL"], "sources.order": ["sample"]})
    written = json.loads(path.read_text())
    shipped = json.loads(SHIPPED_CONFIG.read_text())
    assert written["universe"]["symbols"] == ["AAPL"]
    assert written["sources"]["order"] == ["sample"]
    assert written["sources"]["sample"] == shipped["sources"]["sample"]
    assert written["models"] == shipped["models"]


def test_markdown_tables_right_align_numbers() -> None:
    table = markdown_table(["night", "s", "peak"], [["1 (2026-12-01)", "3.5", "1.20 (Task 2)"]])
    assert table.splitlines() == [
        "| night | s | peak |",
        "| --- | ---: | ---: |",
        "| 1 (2026-12-01) | 3.5 | 1.20 (Task 2) |",
    ]


# A stand-in for `turbomode nightly`: prints its lines and, in task 2 only, holds 150 MB and writes 3 MB.
FAKE_NIGHTLY = textwrap.dedent(
    """\
    import os, pathlib, sys, time
    home = pathlib.Path(os.environ["TURBOMODE_HOME"])
    print("TurboMode nightly for 2026-12-01: home", home, flush=True)
    print("[1/2] Task 1 run_ingestion (Master Market Data Ingestion) ...", flush=True)
    time.sleep(0.3)  # as the real command creates the run before its first write
    (home / "market_data.db").write_bytes(b"m" * 1_000_000)
    time.sleep(0.5)
    print("      done in 0.5 s; bars", flush=True)
    print("[2/2] Task 2 run_orchestrator (TurboMode Training Orchestrator) ...", flush=True)
    block = b"x" * 150_000_000
    (home / "models").mkdir()
    (home / "models" / "artifact.bin").write_bytes(b"a" * 3_000_000)
    time.sleep(1.0)
    del block
    print("      done in 1.0 s; trained", flush=True)
    time.sleep(0.3)
    """
)


def test_a_night_attributes_memory_and_bytes_to_the_task_that_ran(tmp_path: Path) -> None:
    home, lines = tmp_path / "home", []
    night = run_night(
        "2026-12-01", home, tmp_path / "c.json", echo=lines.append, interval=0.1,
        command=[sys.executable, "-c", FAKE_NIGHTLY],
    )  # fmt: skip
    assert night.exit_code == 0
    assert [(t.task_id, t.function, t.ok, t.wall_s) for t in night.tasks] == [
        (1, "run_ingestion", True, 0.5),
        (2, "run_orchestrator", True, 1.0),
    ]
    ingestion, training = night.tasks
    assert ingestion.bytes_added == {"market_data.db": 1_000_000}
    assert training.bytes_added == {"market_data.db": 0, "models": 3_000_000}
    assert training.peak_rss_bytes >= 150e6 > ingestion.peak_rss_bytes
    assert 0 < training.rss_start_bytes < 150e6
    assert training.disk_write_bytes >= 3_000_000
    assert night.peak_rss_bytes >= 150e6  # the kernel's high-water mark
    assert night.disk_write_bytes >= 4_000_000  # and its count of the bytes written
    assert night.bytes_added == {"market_data.db": 1_000_000, "models": 3_000_000}
    assert night.wall_s >= 1.8 and night.warnings == [] and night.dagster_runs == []
    assert lines[1] == "  | [1/2] Task 1 run_ingestion (Master Market Data Ingestion) ..."
    document = night.as_json()
    assert document["tasks"][1]["bytes_added_total"] == 3_000_000
    assert 0 < document["tasks"][0]["started"] < document["tasks"][0]["ended"] <= document["tasks"][1]["started"]
    assert document["bytes_added_total"] == 4_000_000
    json.dumps(document)  # JSON-ready
    assert time.time() - night.started >= night.wall_s


def test_a_night_over_the_memory_limit_is_stopped_and_says_why(tmp_path: Path) -> None:
    hog = (
        "print('[1/1] Task 2 run_orchestrator (T) ...', flush=True); import time; b = b'x' * 200_000_000; "
        "time.sleep(30)"
    )
    night = run_night(
        "2026-12-01", tmp_path / "home", tmp_path / "c.json", echo=lambda _: None, interval=0.1,
        command=[sys.executable, "-c", hog], max_rss_bytes=100_000_000,
    )  # fmt: skip
    assert night.exit_code == -9
    assert night.wall_s < 10
    assert night.warnings[0].startswith("stopped: the process tree held 0.")
    assert night.warnings[0].endswith("GB, over --max-rss 0.10")
    assert night.tasks[0].ended is None  # the task never finished


def test_a_temporary_home_is_fresh_and_removed_and_a_given_one_is_kept(tmp_path: Path) -> None:
    with BenchHome(None) as bench:
        assert bench.fresh and bench.config.parent == bench.home.parent
        bench.home.mkdir()
        scratch = bench.home.parent
    assert not scratch.exists()
    given = tmp_path / "given"
    (given / "models").mkdir(parents=True)
    with BenchHome(given) as bench:
        assert bench.home == given and not bench.fresh
        bench.config.write_text("{}")
    assert given.exists() and not bench.config.exists()
