"""What the Dagster UI sees, asked through a real webserver's GraphQL: runs made by `turbomode run` and by
`dagster job execute` listed under their job, and `turbomode stop` / `start` flipping the toggles."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from turbomode_dagster.cli import main
from turbomode_dagster.config import load_settings
from turbomode_dagster.orchestration.instance import instance_yaml
from turbomode_dagster_tests.conftest import DAY, ENV_VARS, SMALL_PATCHES, write_config

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
SELECTOR = '{repositoryName: "__repository__", repositoryLocationName: "turbomode"}'
RUNS = "{ runsOrError { ... on Runs { results { runId jobName repositoryOrigin { repositoryLocationName } } } } }"
JOB_RUNS = (
    '{ pipelineOrError(params: {pipelineName: "run_ingestion", repositoryName: "__repository__", '
    'repositoryLocationName: "turbomode"}) { ... on Pipeline { runs { runId } } } }'
)
TOGGLES = (
    f"{{ schedulesOrError(repositorySelector: {SELECTOR}) {{ ... on Schedules {{ results {{ name "
    f"scheduleState {{ status }} }} }} }} sensorsOrError(repositorySelector: {SELECTOR}) {{ ... on Sensors "
    f"{{ results {{ name sensorState {{ status }} }} }} }} }}"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer
    return answer["data"]


def toggles(port: int) -> set[str]:
    data = graphql(port, TOGGLES)
    return {s["scheduleState"]["status"] for s in data["schedulesOrError"]["results"]} | {
        s["sensorState"]["status"] for s in data["sensorsOrError"]["results"]
    }


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("ui")
    config = write_config(root / "config.json", {**SMALL_PATCHES, "sources.order": ["sample"]})
    (root / "home").mkdir()
    (root / "dagster_home").mkdir()
    (root / "dagster_home" / "dagster.yaml").write_text(instance_yaml(load_settings(config)))
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(TURBOMODE_HOME=str(root / "home"), DAGSTER_HOME=str(root / "dagster_home"), TURBOMODE_CONFIG=str(config))
    return env


def run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def webserver(environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """Two runs made outside the UI, then a webserver on the workspace.yaml, in its own process group."""
    partition = json.dumps({"dagster/partition": DAY})
    ours = subprocess.Popen([BIN / "turbomode", "run", "1", "--date", DAY], cwd=REPO, env=environment, text=True)
    cli = run(environment, str(BIN / "dagster"), "job", "execute", "-m", "turbomode_dagster.definitions",
              "-j", "run_ingestion", "--tags", partition)  # fmt: skip
    assert ours.wait(timeout=300) == 0
    assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
    port = free_port()
    log = (tmp_path_factory.mktemp("web") / "web.log").open("w")
    server = subprocess.Popen(
        [BIN / "dagster-webserver", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the webserver did not come up"
                time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


@pytest.mark.slow
def test_every_run_is_listed_under_its_job(webserver: int) -> None:
    runs = graphql(webserver, RUNS)["runsOrError"]["results"]
    assert len(runs) == 2
    assert {r["repositoryOrigin"]["repositoryLocationName"] for r in runs if r["repositoryOrigin"]} == {"turbomode"}
    assert all(r["repositoryOrigin"] for r in runs)
    listed = graphql(webserver, JOB_RUNS)["pipelineOrError"]["runs"]
    assert {r["runId"] for r in listed} == {r["runId"] for r in runs}


@pytest.mark.slow
def test_stop_and_start_flip_the_toggles_the_ui_shows(
    webserver: int, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV_VARS:
        monkeypatch.setenv(name, environment[name]) if name in environment else monkeypatch.delenv(name, False)
    assert toggles(webserver) == {"RUNNING"}
    assert main(["stop"]) == 0
    assert toggles(webserver) == {"STOPPED"}
    assert main(["start"]) == 0
    assert toggles(webserver) == {"RUNNING"}
