"""dagster-dask's executor on an existing scheduler, with four fixes: runs with pools, pool limits, one cluster
for many runs, no step after a failure.

- distributed 2025+ walks `client.submit`'s tuple arguments looking for futures; a `DagsterRun` (a NamedTuple)
  of a run that uses a pool carries a `RunOpConcurrency` `@record`, which refuses iteration, so dagster-dask
  0.29.27 failed every such run (ingestion and training hold the database_write pool). Each step's
  arguments travel here inside one object distributed does not look into.
- dagster-dask's worker runs a step without claiming its pool's slot, so two writers of one SQLite
  database could run at once on two workers. Here the worker claims the slot first, as Dagster's own
  executors do before they start a step (`InstanceConcurrencyContext`), waits while the pool is full,
  and gives it back when the step ends.
- dagster-dask keys a step's task `job.step`, so two runs of one job on one cluster share results
  (dagster issue 21418); here the key carries the run id.
- dagster-dask starts a step whose upstream step failed (the worker's plan holds that step alone); here
  it is not run.
On the worker the step runs exactly as dagster-dask runs it (`query_on_dask_worker`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import dask.distributed
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.errors import raise_execution_interrupts
from dagster._core.events import DagsterEvent
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._core.execution.retries import RetryMode
from dagster._core.instance.ref import InstanceRef
from dagster._utils import iterate_with_context
from dagster_dask.executor import get_dask_resource_requirements, query_on_dask_worker

from turbomode_dagster.orchestration.pool_claim import pool_slot


@dataclass(frozen=True)
class StepOnWorker:
    """One step's call on a Dask worker; a plain object, so distributed passes its contents through untouched."""

    job: ReconstructableJob
    run: dg.DagsterRun
    run_config: dict
    step_key: str
    instance: InstanceRef
    known_state: KnownExecutionState | None
    pool: str | None = None

    def __call__(self, dependencies: Sequence[Sequence[DagsterEvent]]) -> Sequence[DagsterEvent]:
        """Run the step once the steps it depends on (`dependencies`, their events) have succeeded and its
        pool has a slot for it. After an upstream failure it does not run, as on Dagster's own executors:
        the worker's plan knows only this step, so it would start and fail reading an input never written."""
        if not all(any(event.is_step_success for event in events) for events in dependencies):
            return []
        with worker_pool_slot(self.instance, self.run, self.step_key, self.pool):
            return query_on_dask_worker(
                dependencies, self.job, self.run, self.run_config, [self.step_key], self.instance, self.known_state
            )


@contextmanager
def worker_pool_slot(instance_ref: InstanceRef, run: dg.DagsterRun, step_key: str, pool: str | None) -> Iterator[None]:
    """Hold a slot of `pool` for the step while it runs on the worker (waiting for one first); no-op without a pool."""
    if pool is None:
        yield
        return
    with dg.DagsterInstance.from_ref(instance_ref) as instance, pool_slot(instance, run, step_key, pool):
        yield


class SchedulerExecutor(dg.Executor):
    """Submits every step to the Dask scheduler at `address`, after the steps whose outputs it reads."""

    def __init__(self, address: str):
        self.address = address

    @property
    def retries(self) -> RetryMode:
        """Retries are the assets' retry policies, as on dagster-dask's executor."""
        return RetryMode.DISABLED

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        """Submit the plan level by level and yield each step's events as it completes."""
        if not plan_context.instance.is_persistent:
            raise dg.DagsterInvariantViolationError("the Dask executor needs a persistent Dagster instance")
        run = plan_context.dagster_run
        with dask.distributed.Client(self.address) as client:
            futures: dict[str, dask.distributed.Future] = {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    call = StepOnWorker(
                        plan_context.reconstructable_job,
                        run,
                        dict(plan_context.run_config),
                        step.key,
                        plan_context.instance.get_ref(),
                        execution_plan.known_state,
                        step.pool,
                    )
                    dependencies = [
                        futures[key] for step_input in step.step_inputs for key in step_input.dependency_keys
                    ]
                    futures[step.key] = client.submit(
                        call,
                        dependencies,
                        key=f"{run.job_name}.{step.key}.{run.run_id}",
                        resources=get_dask_resource_requirements(step.tags),
                        pure=False,
                    )
            completed = dask.distributed.as_completed(list(futures.values()), with_results=True)
            for _, events in iterate_with_context(raise_execution_interrupts, completed):
                yield from events


@dg.executor(
    name="dask",
    config_schema={"address": dg.Field(dg.StringSource, description="The Dask scheduler, tcp://host:8786.")},
    requirements=dg.multiple_process_executor_requirements(),
)
def scheduler_executor(init_context: dg.InitExecutorContext) -> SchedulerExecutor:
    """Steps on an existing Dask scheduler's workers (compute.executor "dask")."""
    return SchedulerExecutor(init_context.executor_config["address"])
