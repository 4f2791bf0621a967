"""The Dagster UI as a new user sees it after a small nightly, in Debian's chromium driven by Playwright.

One night for the module, into a temporary home: ingestion of the session before (so the Plots tab has
two points to join), then `turbomode nightly` on six symbols while `dagster-webserver` starts on
127.0.0.1 and a free port in its own process group (killed as a group at the end, even when a test
fails). The webserver alone, not `dagster dev`: the pages checked read the instance, and the daemon that
`dagster dev` adds would start the schedules and sensors (on by default) and could launch runs mid-test.
Each test opens one page and saves a screenshot of it in its tmp_path. Skipped, with the reason, only
where /usr/bin/chromium or Playwright is missing; `playwright install` is never needed.
"""

from __future__ import annotations

import base64
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

import dagster as dg
import pytest

from turbomode_dagster import calendar
from turbomode_dagster.config import load_settings
from turbomode_dagster.orchestration.instance import instance_yaml
from turbomode_dagster_tests.conftest import DAY, ENV_VARS, SMALL_PATCHES, write_config
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
UI_TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen: wide metadata tables clip here
PNG = b"\x89PNG\r\n\x1a\n"


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


def _wait_for_server(url: str, server: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as reply:
                if reply.status == 200 and "dagster_version" in json.load(reply):
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dagster-webserver did not answer /server_info within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    """A night's results in a temporary home and a webserver over them, stopped by its process group."""
    root = tmp_path_factory.mktemp("ui_night")
    home, dagster_home = root / "home", root / "dagster_home"
    home.mkdir()
    dagster_home.mkdir()
    config = write_config(root / "config.json", PATCHES)
    (dagster_home / "dagster.yaml").write_text(instance_yaml(load_settings(config)))
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(TURBOMODE_HOME=str(home), DAGSTER_HOME=str(dagster_home), TURBOMODE_CONFIG=str(config))
    log = root / "night.log"
    select = ["--select", MARKET_DATA, "--partition", PREVIOUS]
    # The first run creates the instance's SQLite storage; a webserver started beside it would race it.
    _run([str(BIN / "dagster"), "asset", "materialize", "-m", "turbomode_dagster.definitions", *select], env, log)
    port = _free_port()
    server_log = root / "webserver.log"
    with server_log.open("w") as out:  # it loads the code location while the nightly runs
        server = subprocess.Popen(
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO,  # pyproject.toml's [tool.dagster] names the code location, as for a user
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _run([str(BIN / "turbomode"), "nightly", "--date", DAY, "--sources", "sample"], env, log)
        url = f"http://127.0.0.1:{port}"
        _wait_for_server(url, server, server_log)
        yield Night(url, dagster_home)
    finally:
        _stop_group(server)


def _stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the webserver's whole process group (it and its code server), SIGKILL if it lingers."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


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
    numeric = ("rows_written", "quarantined_rows", "symbols_ingested")  # one chart each
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


def test_the_ingestion_jobs_runs_tab_lists_the_nightlys_run(night: Night, page) -> None:
    with dg.DagsterInstance.from_config(str(night.dagster_home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="run_ingestion", tags={"dagster/partition": DAY}))
    assert runs, "the nightly ran run_ingestion"
    page.goto("/locations/turbomode/jobs/run_ingestion/runs")
    listed = page.get_by_text(runs[0].run_id[:8]).first
    sync_api.expect(listed.or_(page.get_by_text("No runs found"))).to_be_visible()  # the list has loaded
    assert listed.is_visible(), f"run {runs[0].run_id} of run_ingestion is not on the job's Runs tab"
