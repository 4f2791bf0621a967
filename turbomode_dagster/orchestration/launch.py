"""Run one task's job in this process, attached to the TurboMode code location (the seed's run_<function>).

The run is created with the code location's remote origin, so the UI lists it under its job, in the
Overview timeline and on the asset's partitions exactly like a run launched from the UI; it executes
here, step after step in this process (the in-process executor), unless the job names another executor
(`compute.executor`): then its steps run where that executor puts them, each rebuilding the job from the
code location. Dagster's console logger is at WARNING because the `turbomode` command prints its own
progress, or at INFO when the run's own progress should show (a catch-up over years of sessions logs
"fetched 40 of 83 symbols" as it goes). The job's own tags (timeout, task) and the partition's tags (one
session, or a range of sessions run as one run) are applied as Dagster applies them to a launched run.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.executor_definition import in_process_executor, multi_or_in_process_executor
from dagster._core.definitions.job_base import IJob, InMemoryJob
from dagster._core.execution.api import execute_run
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.execution.job_execution_result import JobExecutionResult

from turbomode_dagster.config import ScheduledTask
from turbomode_dagster.orchestration.code_location import job_code_origin, job_origin, reconstructable_job
from turbomode_dagster.orchestration.event_storage import set_event_switches
from turbomode_dagster.orchestration.partitions import partition_tags

QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PROGRESS_CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# The default executor of Definitions picks in-process execution with this config; a job that names the
# in-process executor itself needs none.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


class UnknownTask(LookupError):
    """A task named on the command line that the config or the code location does not have."""


def resolve_task(spec: str, tasks: tuple[ScheduledTask, ...]) -> ScheduledTask:
    """The task `spec` names: its id (`1`..`6`) or its function name (`run_ingestion`)."""
    for task in tasks:
        if spec.strip() in (str(task.task_id), task.function_name):
            return task
    known = ", ".join(f"{t.task_id} ({t.function_name})" for t in sorted(tasks, key=lambda t: t.task_id))
    raise UnknownTask(f"unknown task {spec!r}: use a task id or function name, one of {known}")


def task_job(defs: dg.Definitions, task: ScheduledTask) -> dg.JobDefinition:
    """The job that runs `task` in these definitions."""
    try:
        return defs.resolve_job_def(task.function_name)
    except dg.DagsterInvariantViolationError as exc:
        raise UnknownTask(f"task {task.task_id} ({task.function_name}) has no job in the code location") from exc


def execute_attached(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    first: str | None = None,
    last: str | None = None,
    *,
    show_progress: bool = False,
) -> JobExecutionResult:
    """Create `job`'s run against the code location's origin and execute it here: for session `first`, or for
    the sessions `first`..`last` in one run (the job's assets must backfill a range in a single run)."""
    set_event_switches()  # read by Dagster when it creates and executes the run below, whatever the instance
    console = PROGRESS_CONSOLE if show_progress else QUIET_CONSOLE
    run_config = {**console, **(IN_PROCESS if job.executor_def.name == multi_or_in_process_executor.name else {})}
    executable = _executable(job)
    if first is not None and last not in (None, first):
        tags = merge_run_tags(job, None, partition_tags(first, last), None, instance, run_config)
    else:
        tags = merge_run_tags(job, first, None, None, instance, run_config)
    run = instance.create_run_for_job(
        job_def=job,
        run_config=run_config,
        tags=tags,
        remote_job_origin=job_origin(job.name),
        job_code_origin=job_code_origin(job.name),
    )
    return execute_run(executable, run, instance)


def _executable(job: dg.JobDefinition) -> IJob:
    """The job itself for in-process execution; for an executor that runs steps elsewhere, the job as those
    processes rebuild it from the code location (Dagster refuses an in-memory job there)."""
    if job.executor_def.name in (multi_or_in_process_executor.name, in_process_executor.name):
        return InMemoryJob(job)
    recon = reconstructable_job(job.name)
    rebuilt = recon.get_definition().executor_def.name
    if rebuilt != job.executor_def.name:
        raise dg.DagsterInvariantViolationError(
            f"{job.name} is on the {job.executor_def.name} executor, but the code location this process loaded "
            f"(TURBOMODE_CONFIG) puts it on {rebuilt}: its steps would not run as asked"
        )
    return recon
