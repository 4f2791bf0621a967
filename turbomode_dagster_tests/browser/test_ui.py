"""The Dagster UI as a new user sees it after a small nightly, in Debian's chromium driven by Playwright.

One night for the module, into a temporary home: ingestion of the session before (so the Plots tab has
two points to join), then `turbomode nightly` on six symbols while `dagster dev` (webserver, daemon and
code server) starts on 127.0.0.1 and a free port in its own process group, stopped as a group at the end
(SIGINT, then SIGKILL if it lingers), even when a test fails. Its daemon runs the schedules and sensors as
on a user's machine; they launch nothing here: every schedule's hour is set 12 hours away from the start,
the `_after_upstream` sensors work on the latest tick's session (this week's, never the test's 2026
session), and the small night raises no retraining flag for `retrain_on_drift` (the Materialize test
checks that no run came from automation). Each test opens its pages and saves a screenshot of each in
its tmp_path. Skipped, with the reason, only where /usr/bin/chromium or Playwright is missing;
`playwright install` is never needed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.storage.tags import PARTITION_NAME_TAG, SCHEDULE_NAME_TAG, SENSOR_NAME_TAG

from turbomode_dagster import calendar
from turbomode_dagster.config import load_settings
from turbomode_dagster.orchestration.instance import instance_yaml
from turbomode_dagster.orchestration.partitions import runs_for_session
from turbomode_dagster.storage.drift_log import DriftLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB
from turbomode_dagster_tests.conftest import DAY, ENV_VARS, SMALL_PATCHES, shipped_config, write_config
from turbomode_dagster_tests.test_cli import NIGHTLY_PATCHES

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(
        f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: pip install -e '.[test]'")

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
PREVIOUS = calendar.previous_session(DAY)
# A higher bar than the shipped 0.25 leaves some HOLD rows, so "BUY and SELL first" is a real ordering.
PATCHES = {**SMALL_PATCHES, "sources.order": ["sample"], **NIGHTLY_PATCHES, "scanner.min_probability": 0.4}
MARKET_DATA = "daily_bars,corporate_actions,fundamentals,symbol_metadata"
STEP_TIMEOUT = 240
STOP_TIMEOUT = 30  # dagster dev gives its webserver and daemon up to 60 s each; they stop in a few
UI_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen: wide metadata tables clip here
RUN_TIMEOUT_MS = 120_000  # the daemon dequeues a launched run within seconds; the run starts a process
PNG = b"\x89PNG\r\n\x1a\n"
NIGHT_JOBS = (
    "run_ingestion",
    "run_orchestrator",
    "run_overnight_scanner",
    "run_backtest_generator",
    "run_drift_monitor",
)


@dataclass(frozen=True)
class Night:
    url: str
    dagster_home: Path


def _run(command: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        done = subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=STEP_TIMEOUT)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{log.read_text()[-3000:]}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _schedules_away_from_now() -> dict[str, int]:
    """Config patches moving every task's hour 12 hours from now (New York time): no tick while the module runs."""
    shipped = shipped_config()
    hour = (dt.datetime.now(ZoneInfo(shipped["global_settings"]["timezone"])).hour + 12) % 24
    return {f"scheduled_tasks.{index}.schedule.hour": hour for index in range(len(shipped["scheduled_tasks"]))}


def _start_dagster_dev(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dagster dev` on 127.0.0.1:`port`, in its own process group, able to shut down on SIGINT.

    A child inherits an ignored SIGINT (pytest run in the background of a script), and `dagster dev` maps
    SIGTERM to its SIGINT handler, so it would ignore both; it starts here with SIGINT's default instead.
    """
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        with log.open("w") as out:
            return subprocess.Popen(
                [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
                cwd=REPO,  # pyproject.toml's [tool.dagster] names the code location, as for a user
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _wait_for_server(url: str, server: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dagster dev exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as reply:
                if reply.status == 200 and "dagster_version" in json.load(reply):
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(
        f"dagster dev's webserver did not answer /server_info within {timeout:.0f} s:\n{log.read_text()[-3000:]}"
    )


def _stop_group(server: subprocess.Popen) -> None:
    """SIGINT to dagster dev's process group (it stops its webserver, daemon and code servers), then SIGKILL.

    The SIGKILL reaches whatever of the group is left: all of it if `dagster dev` ignored SIGINT or hung,
    else nothing or a straggling code server.
    """
    with contextlib.suppress(ProcessLookupError):  # raised once no process of the group is left
        os.killpg(server.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=STOP_TIMEOUT)
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    """A night's results in a temporary home and `dagster dev` over them, stopped by its process group."""
    root = tmp_path_factory.mktemp("ui_night")
    home, dagster_home = root / "home", root / "dagster_home"
    home.mkdir()
    dagster_home.mkdir()
    config = write_config(root / "config.json", {**PATCHES, **_schedules_away_from_now()})
    (dagster_home / "dagster.yaml").write_text(instance_yaml(load_settings(config)))
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(TURBOMODE_HOME=str(home), DAGSTER_HOME=str(dagster_home), TURBOMODE_CONFIG=str(config))
    log = root / "night.log"
    select = ["--select", MARKET_DATA, "--partition", PREVIOUS]
    # The first run creates the instance's SQLite storage; a server started beside it would race it.
    _run([str(BIN / "dagster"), "asset", "materialize", "-m", "turbomode_dagster.definitions", *select], env, log)
    port = _free_port()
    server_log = root / "dagster_dev.log"
    server = _start_dagster_dev(port, env, server_log)  # it loads the code location while the nightly runs
    try:
        _run([str(BIN / "turbomode"), "nightly", "--date", DAY, "--sources", "sample"], env, log)
        flags = DriftLog(TurboModeDB.at_home(home)).open_flags()  # each would make retrain_on_drift train
        assert not flags, f"the small night raised retraining flags {[f.flag_id for f in flags]}"
        url = f"http://127.0.0.1:{port}"
        _wait_for_server(url, server, server_log)
        yield Night(url, dagster_home)
    finally:
        _stop_group(server)


@pytest.fixture(scope="module")
def browser(night: Night) -> Iterator[object]:
    """One chromium and one context (the UI remembers dismissed dialogs in it) for the module."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        context = chromium.new_context(viewport=VIEWPORT, base_url=night.url)
        context.set_default_timeout(UI_TIMEOUT_MS)
        yield context
        context.close()
        chromium.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A fresh tab; its screenshot is saved in tmp_path when the test ends, passed or failed."""
    tab = browser.new_page()
    # Dagster's community sign-up dialog pops up over the first page; dismiss it whenever it shows.
    tab.add_locator_handler(
        tab.get_by_text("Join the Dagster community"), lambda _: tab.get_by_role("button", name="Skip").click()
    )
    sync_api.expect.set_options(timeout=UI_TIMEOUT_MS)
    yield tab
    shot = tmp_path / f"{request.node.name}.png"
    tab.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    tab.close()


def metadata_row(page, key: str):
    """The row of the asset page's metadata table whose key cell reads `key`."""
    return (
        page.locator("tr").filter(has=page.locator("td:first-child", has_text=re.compile(rf"^{re.escape(key)}$"))).first
    )


def nested_rows(page, key: str) -> list[list[str]]:
    """The cells of the table shown as the value of metadata `key`, row by row."""
    table = metadata_row(page, key).locator("table").first
    sync_api.expect(table).to_be_visible()
    table.scroll_into_view_if_needed()
    return [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]


def open_asset(page, asset: str, first_key: str = "model_version") -> None:
    """The asset's page, once its latest materialisation's metadata (the row `first_key`) has loaded."""
    page.goto(f"/assets/{asset}")
    sync_api.expect(metadata_row(page, first_key)).to_be_visible()


CLIPPED = """() => [...document.querySelectorAll('table table')].flatMap(table => {
  const cell = table.parentElement.closest('td');
  let box = cell.closest('table').parentElement;
  while (box && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
  const key = cell.parentElement.querySelector('td').innerText.trim();
  const over = table.getBoundingClientRect().right - box.getBoundingClientRect().right;
  return over > 1 ? [`${key} (${Math.round(over)} px)`] : [];
})"""


def assert_no_table_clipped(page) -> None:
    """No metadata table reaches past the edge of the metadata panel, which would hide its last columns."""
    assert page.evaluate(CLIPPED) == [], f"metadata tables wider than the page at {VIEWPORT['width']} px"


def picture_bytes(page, key: str) -> bytes:
    """Open metadata `key`'s markdown (a PNG as a data URI), check the image rendered, return its bytes."""
    metadata_row(page, key).get_by_text("[Show Markdown]").click()
    image = page.get_by_role("dialog").locator('img[src^="data:image/png;base64,"]').first
    sync_api.expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0, f"{key}: the browser drew no image"
    return base64.b64decode(image.get_attribute("src").split(",", 1)[1])


def test_the_signals_page_shows_buy_and_sell_first(night: Night, page) -> None:
    open_asset(page, "overnight_signals")
    signals = [row[1] for row in nested_rows(page, "preview")]
    assert signals[0] in {"BUY", "SELL"}, signals
    assert "HOLD" in signals, "the night should have HOLD rows, or the order is not tested"
    first_hold = signals.index("HOLD")
    assert set(signals[first_hold:]) == {"HOLD"}, f"a BUY or SELL below a HOLD: {signals}"
    assert_no_table_clipped(page)


def test_the_backtest_page_draws_the_equity_curve(night: Night, page) -> None:
    open_asset(page, "backtest_report")
    assert [row[0] for row in nested_rows(page, "metrics")][:3] == ["total_return", "cagr", "sharpe"]
    assert_no_table_clipped(page)
    png = picture_bytes(page, "equity_curve")
    assert png.startswith(PNG) and len(png) > 1_000


def test_the_drift_page_shows_the_table_and_the_picture(night: Night, page) -> None:
    open_asset(page, "drift_report")
    sync_api.expect(metadata_row(page, "decision")).to_contain_text("retraining flag")
    statuses = {row[1] for row in nested_rows(page, "drift_table")}
    assert statuses and statuses <= {"ok", "warn", "alert"}
    assert_no_table_clipped(page)
    assert picture_bytes(page, "drift_picture").startswith(PNG)


def test_the_model_page_shows_shap_per_class_and_explains_its_metrics(night: Night, page) -> None:
    open_asset(page, "trained_ensemble")
    sync_api.expect(metadata_row(page, "about_the_metrics")).to_contain_text("Promotion uses out-of-sample log loss")
    classes = [row[0] for row in nested_rows(page, "shap_by_class")]
    assert list(dict.fromkeys(classes)) == ["BUY", "SELL", "HOLD"]
    learners = {(row[0], row[1]) for row in nested_rows(page, "shap_by_learner")}
    assert learners == {(c, learner) for c in ("BUY", "SELL", "HOLD") for learner in ("hist", "linear")}
    assert_no_table_clipped(page)
    assert picture_bytes(page, "shap_picture").startswith(PNG)


def test_the_feature_page_fits_its_tables(night: Night, page) -> None:
    open_asset(page, "feature_panel", "backend")
    assert len(nested_rows(page, "latest_session")) > 30, "one row per feature"
    assert_no_table_clipped(page)


def test_the_plots_tab_draws_the_ingested_rows_per_partition(night: Night, page) -> None:
    open_asset(page, "daily_bars", "rows_written")
    page.get_by_role("button", name="Plots").click()
    # one chart each; sessions_covered only on the catch-up range's last session, the others on every session
    numeric = ("rows_written", "quarantined_rows", "symbols_ingested", "sessions_covered")
    for key in numeric:
        sync_api.expect(page.get_by_text(key, exact=True)).to_be_visible()
    sync_api.expect(page.locator("canvas")).to_have_count(len(numeric))
    assert page.get_by_text("date_range", exact=True).count() == 0, "a text value must not be plotted"


def test_the_lineage_shows_every_group(night: Night, page) -> None:
    page.goto("/asset-groups")
    for group in ("market_data", "features", "models", "scanner", "backtests", "drift"):
        sync_api.expect(page.get_by_text(group, exact=True).first).to_be_visible()


def test_the_jobs_list_shows_every_task(night: Night, page) -> None:
    page.goto("/jobs")
    for job in ("run_ingestion", "run_orchestrator", "run_overnight_scanner", "run_backtest_generator",
                "run_drift_monitor", "run_weekly_maintenance"):  # fmt: skip
        sync_api.expect(page.get_by_text(job, exact=True)).to_be_visible()


def night_run_id(night: Night, job: str) -> str:
    """The id of the run of `job` that the nightly made for DAY."""
    with dg.DagsterInstance.from_config(str(night.dagster_home)) as instance:
        runs = [r.dagster_run for r in runs_for_session(instance, DAY) if r.dagster_run.job_name == job]
    assert runs, f"the nightly made no run of {job} for {DAY}"
    return runs[0].run_id


@pytest.mark.parametrize("job", NIGHT_JOBS)
def test_each_jobs_runs_tab_lists_the_nightlys_run(night: Night, page, job: str) -> None:
    run_id = night_run_id(night, job)
    page.goto(f"/locations/turbomode/jobs/{job}/runs")
    listed = page.get_by_text(run_id[:8]).first
    sync_api.expect(listed.or_(page.get_by_text("No runs found"))).to_be_visible()  # the list has loaded
    assert listed.is_visible(), f"run {run_id} of {job} is not on the job's Runs tab"


def test_a_materialize_launched_from_the_asset_page_succeeds(night: Night, page, tmp_path: Path) -> None:
    """daily_bars' Materialize button, the night's session picked in the launch dialog, the run queued and
    dequeued by dagster dev's daemon, until its page shows Success (the last test: it adds a run)."""
    shots = itertools.count(1)

    def shot(step: str) -> None:
        page.screenshot(path=str(tmp_path / f"{next(shots)}_{step}.png"))

    open_asset(page, "daily_bars", "rows_written")
    shot("asset_page")
    page.get_by_role("button", name="Materialize…").click()
    # The four market-data assets are one multi-asset: the UI says it materialises them together.
    confirm = page.get_by_role("dialog").filter(has_text="Additional assets will be materialized")
    sync_api.expect(confirm).to_contain_text("corporate_actions")
    shot("additional_assets")
    confirm.get_by_role("button", name="Confirm").click()
    launch = page.get_by_role("dialog").filter(has_text="Launch runs to materialize 4 assets")
    # Typing before the partitions have loaded is lost: wait for the partition bar's count.
    sync_api.expect(launch.get_by_text(re.compile(r"Showing \d+ of \d+ partitions"))).to_be_visible()
    shot("launch_dialog")
    partitions = launch.get_by_placeholder("No matching partitions")
    partitions.fill(DAY)
    partitions.press("Enter")
    sync_api.expect(launch.get_by_text("1 partition", exact=True)).to_be_visible()
    shot("one_partition")
    launch.get_by_role("button", name="Launch 1 run").click()
    launched = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))
    sync_api.expect(launched).to_be_visible()
    shot("launched")
    short_id = launched.inner_text().split()[-1]
    page.get_by_role("link", name="View", exact=True).click()  # the toast's link to the run's page
    sync_api.expect(page).to_have_url(re.compile(rf"/runs/{short_id}"))
    sync_api.expect(page.get_by_text("Success", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    shot("run_success")
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    with dg.DagsterInstance.from_config(str(night.dagster_home)) as instance:
        run = instance.get_run_by_id(run_id)
        latest = instance.get_latest_materialization_event(dg.AssetKey("daily_bars"))
        automated = [
            f"{r.run_id} ({r.tags.get(SENSOR_NAME_TAG) or r.tags.get(SCHEDULE_NAME_TAG)})"
            for r in instance.get_runs()
            if SENSOR_NAME_TAG in r.tags or SCHEDULE_NAME_TAG in r.tags
        ]
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags[PARTITION_NAME_TAG] == DAY
    assert dg.AssetKey("daily_bars") in run.asset_selection
    assert (latest.run_id, latest.asset_materialization.partition) == (run_id, DAY), (
        "the run did not materialise daily_bars for the day"
    )
    assert automated == [], "the daemon's schedules or sensors launched runs of their own"
