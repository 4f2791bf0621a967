"""Hold a pool's slot for one step, as Dagster's executors do before a pooled step starts.

Used where Dagster's executor does not claim it: on a Dask worker (`dask_executor`), and by a step outside
the `database_write` pool that must write once (a learner step recording its failure).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext

CLAIM_RETRY_SECONDS = 0.5  # how often a step waiting for its pool asks again (Dagster backs off on its own)


@contextmanager
def pool_slot(instance: dg.DagsterInstance, run: dg.DagsterRun, step_key: str, pool: str) -> Iterator[None]:
    """Hold a slot of `pool` for the run's step (waiting for one first); given back on the way out."""
    with InstanceConcurrencyContext(instance, run) as slots:
        while not slots.claim(pool, step_key):
            time.sleep(CLAIM_RETRY_SECONDS)
        try:
            yield
        finally:
            slots.free_step(step_key)
