"""A Task 1 run in its own process, for crash drills: `python -m ... POINT MARKER DAY`.

With POINT other than `none` the run stops at that point (after writing its pid to MARKER) and waits
to be killed. Settings, homes and sources come from the environment, as for `turbomode nightly`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from turbomode_dagster.config import dagster_home_env, load_settings
from turbomode_dagster.definitions import build_definitions
from turbomode_dagster.orchestration.instance import open_instance
from turbomode_dagster.sources.sample import SampleSource
from turbomode_dagster.storage.market_db import MarketDataReader, MarketDBWriter


def _hang(marker: Path):
    def wait_to_be_killed(*args, **kwargs):
        marker.write_text(str(os.getpid()))
        time.sleep(600)
        raise SystemExit("not killed")

    return wait_to_be_killed


def _install(point: str, marker: Path) -> None:
    """Make the run stop for good at `point`: inside the fetch, inside the transaction, or after the commit."""
    if point == "fetch":
        SampleSource.fetch = _hang(marker)
    elif point == "mid_transaction":
        upsert = MarketDBWriter.upsert

        def upsert_then_hang(self, table, *args, **kwargs):
            written = upsert(self, table, *args, **kwargs)
            if table == "dividends":  # bars and splits are written, the rest are not
                _hang(marker)()
            return written

        MarketDBWriter.upsert = upsert_then_hang
    elif point == "after_commit":
        MarketDataReader.closes = _hang(marker)  # the checks read the stored history after the commit
    elif point != "none":
        raise SystemExit(f"unknown point {point!r}")


def main(point: str, marker: str, day: str) -> int:
    _install(point, Path(marker))
    defs = build_definitions(load_settings())
    instance = open_instance(dagster_home_env())
    result = defs.resolve_job_def("run_ingestion").execute_in_process(
        instance=instance, partition_key=day, raise_on_error=False
    )
    print(f"run {result.run_id} {'succeeded' if result.success else 'failed'}", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
