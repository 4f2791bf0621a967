"""Jobs for the Dask executor's pool test: two independent steps that each sleep a few seconds, in the
database write pool (`pooled_writers`) or in none (`unpooled_writers`, which two workers run at once)."""

from __future__ import annotations

import time

import dagster as dg

from turbomode_dagster.orchestration.dask_executor import scheduler_executor
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL

HOLD_SECONDS = 3.0


def _holds(pool: str | None) -> list[dg.OpDefinition]:
    """Two ops that sleep HOLD_SECONDS; in `pool` if given."""

    def make(name: str) -> dg.OpDefinition:
        @dg.op(name=name, pool=pool)
        def hold() -> None:
            time.sleep(HOLD_SECONDS)

        return hold

    return [make("first_writer"), make("second_writer")]


@dg.job(executor_def=scheduler_executor)
def pooled_writers() -> None:
    for hold in _holds(DATABASE_WRITE_POOL):
        hold()


@dg.job(executor_def=scheduler_executor)
def unpooled_writers() -> None:
    for hold in _holds(None):
        hold()
