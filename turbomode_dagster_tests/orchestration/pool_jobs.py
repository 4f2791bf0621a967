"""Jobs for the Dask executor's tests: two independent steps that each sleep a few seconds, in the
database write pool (`pooled_writers`) or in none (`unpooled_writers`, which two workers run at once),
and a step that fails before the one that reads its output (`failing_upstream`)."""

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


@dg.op
def fails() -> int:
    raise RuntimeError("simulated: the upstream step fails")


@dg.op
def reads_it(value: int) -> int:
    return value + 1


@dg.job(executor_def=scheduler_executor)
def failing_upstream() -> None:
    reads_it(fails())
