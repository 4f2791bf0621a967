"""The executor every task job runs on, from `compute.executor`: in process, a process per step, or Dask.

Steps on the multiprocess and Dask executors run in other processes that rebuild the code location from
`turbomode_dagster.definitions` (the same TURBOMODE_CONFIG and TURBOMODE_HOME) and pass every output
through the Parquet IO manager's files, so results do not depend on where a step ran.
"""

from __future__ import annotations

import dagster as dg

from turbomode_dagster.config import Compute, ConfigError

DASK_EXTRA = 'pip install -e ".[dask]"'


def executor_for(compute: Compute) -> dg.ExecutorDefinition | None:
    """The configured executor, or None for Dagster's default (what `Definitions` gives a job without one)."""
    if compute.executor == "in_process":
        return dg.in_process_executor
    if compute.executor == "multiprocess":
        limit = {"max_concurrent": compute.max_concurrent} if compute.max_concurrent else {}
        return dg.multiprocess_executor.configured(limit, name="multiprocess")
    if compute.executor == "dask":
        return _dask_executor().configured({"address": compute.dask_scheduler}, name="dask")
    return None


def _dask_executor() -> dg.ExecutorDefinition:
    try:
        from turbomode_dagster.orchestration.dask_executor import scheduler_executor
    except ImportError as exc:
        raise ConfigError(
            "compute.executor", [f"compute.executor: 'dask' needs the dask extra ({DASK_EXTRA}): {exc}"]
        ) from None
    return scheduler_executor
