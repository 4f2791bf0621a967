"""Each task's timeout and queue tag on runs launched from an asset selection (the UI's Materialize button).

Retry policies live on the assets' ops, so they hold however a run is launched. A timeout does not:
run monitoring reads `dagster/max_runtime` from the *run's* tags only (dagster
`_daemon/monitoring/run_monitoring.py`, `check_run_timeout`), and op tags are not run tags. A task's
job carries the tag, so schedules, sensors, `dagster job execute` and `turbomode` get it; a run of the
implicit asset job carries none. The sensor `tag_asset_selection_runs` (running by default, every
15 s) gives every unfinished run that has an asset selection and no `turbomode/task` tag the tags of
the tasks whose assets it materialises: `dagster/max_runtime` is the sum of their `timeout_minutes`
(one run doing two tasks' work gets both budgets) and `turbomode/task` names them, comma-separated.
Run monitoring reads the tags on every poll, so a tag added after the run started still ends it on
time (the run's clock counts from its start). The queue tag holds such a run back under
`max_instances` only if the sensor tags it before the queue starts it. Pools are op-level (`pool=` on
the asset), so those hold for asset-selection runs without help.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import dagster as dg
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.orchestration.jobs import TASK_GROUPS
from turbomode_dagster.orchestration.retries import MAX_RUNTIME_TAG, TASK_TAG, run_tags_for

SENSOR_NAME = "tag_asset_selection_runs"
INTERVAL_SECONDS = 15


def tasks_by_asset(assets: Iterable[dg.AssetsDefinition]) -> dict[dg.AssetKey, TaskId]:
    """Each asset key of a task's groups (jobs.TASK_GROUPS) -> that task."""
    task_of_group = {group: task for task, groups in TASK_GROUPS.items() for group in groups}
    return {
        spec.key: task_of_group[spec.group_name]
        for assets_def in assets
        for spec in assets_def.specs
        if spec.group_name in task_of_group
    }


def tags_for_selection(
    settings: Settings, selection: Iterable[dg.AssetKey], tasks: Mapping[dg.AssetKey, TaskId]
) -> dict[str, str]:
    """The run tags for a run materialising `selection`: its tasks' summed timeout and their names; {} if none."""
    touched = sorted({tasks[key] for key in selection if key in tasks})
    if not touched:
        return {}
    configs = [settings.task(task) for task in touched]
    if len(configs) == 1:
        return run_tags_for(configs[0])
    return {
        MAX_RUNTIME_TAG: str(sum(task.timeout_minutes for task in configs) * 60),
        TASK_TAG: ",".join(task.function_name for task in configs),
    }


def asset_selection_run_tagger(settings: Settings, assets: Sequence[dg.AssetsDefinition]) -> dg.SensorDefinition:
    """The sensor that tags unfinished asset-selection runs with their tasks' timeout and queue tag."""
    tasks = tasks_by_asset(assets)

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Gives runs launched from an asset selection (the Materialize button) their tasks' "
        "timeout (dagster/max_runtime, enforced by run monitoring) and turbomode/task tag.",
    )
    def tag_asset_selection_runs(context: dg.SensorEvaluationContext):
        runs = context.instance.get_runs(dg.RunsFilter(statuses=NOT_FINISHED_STATUSES))
        tagged = []
        for run in runs:
            if TASK_TAG in run.tags or not run.asset_selection:
                continue
            tags = tags_for_selection(settings, run.asset_selection, tasks)
            if tags:
                context.instance.add_run_tags(run.run_id, tags)
                tagged.append(f"{run.run_id} ({tags[TASK_TAG]}, max_runtime {tags[MAX_RUNTIME_TAG]} s)")
        return dg.SkipReason(f"tagged {', '.join(tagged)}" if tagged else "no untagged asset-selection run")

    return tag_asset_selection_runs
