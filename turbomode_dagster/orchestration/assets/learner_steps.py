"""`model_training` as a graph: one step per base learner, then a stacking step that publishes.

Each `fit_<learner>` step reads the night's training window, builds the training plan (the float32
block and the purged walk-forward folds) and fits its learner on every fold and on all rows; it
hands the fit on through the step-output IO manager. `stack_ensemble` rebuilds the plan, stacks the
fits and publishes exactly as the single step does (`training.train_and_publish`), so the model, its
out-of-fold predictions and the registry rows are the same bytes. The learner steps take no pool, so
an executor with room runs them at once; the stacking step writes TurboMode.db and takes the
`database_write` pool. A learner that fails marks the run's training failed, naming it: that one
write holds a `database_write` slot for itself.
"""

import time
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.models.ensemble import BaseFit, EnsembleResult, TrainingPlan, fit_base_learner, stack_ensemble
from turbomode_dagster.models.learners import LearnerSpec
from turbomode_dagster.orchestration.assets.training import (
    GROUP,
    learner_specs,
    record_failed_run,
    train_and_publish,
    training_outs,
    training_window,
)
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.pool_claim import pool_slot
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.orchestration.step_outputs import StepOutputIOManager
from turbomode_dagster.storage.session_dataset import SessionDataset
from turbomode_dagster.storage.turbomode_db import TurboModeDB

STEP_IO_MANAGER = "step_io_manager"


def build_learner_step_assets(settings: Settings) -> dg.AssetsDefinition:
    """`trained_ensemble` and `oof_predictions` from a fit step per configured learner and a stacking step."""
    retry = retry_policy_for(settings.task(TaskId.ORCHESTRATOR))  # on every step: a graph asset has none
    specs = learner_specs(settings)
    fits = {_fit_name(spec): _learner_op(spec, retry) for spec in specs}
    stack = _stacking_op(specs, retry)

    @dg.graph_multi_asset(
        name="model_training",
        partitions_def=trading_days(settings.history.start_date),
        group_name=GROUP,
        outs=training_outs(),
        ins={"training_samples": dg.AssetIn()},
    )
    def model_training(training_samples: SessionDataset) -> dict[str, object]:
        trained, oof = stack(training_samples=training_samples, **{n: fit(training_samples) for n, fit in fits.items()})
        return {"trained_ensemble": trained, "oof_predictions": oof}

    return model_training


def _learner_op(spec: LearnerSpec, retry: dg.RetryPolicy | None) -> dg.OpDefinition:
    """The step that fits `spec` on the night's plan; its failure is recorded against the run's training."""

    @dg.op(
        name=_fit_name(spec),
        description=f"Fits base learner {spec.name} ({spec.kind}) on every walk-forward fold and on all rows.",
        out=dg.Out(BaseFit, io_manager_key=STEP_IO_MANAGER),
        retry_policy=retry,
    )
    def fit(context: dg.OpExecutionContext, turbomode: TurboModeHome, training_samples: SessionDataset) -> BaseFit:
        cfg = turbomode.settings()
        window = training_window(training_samples, context.partition_key)
        rows, clock = len(window), time.perf_counter()
        try:
            plan = TrainingPlan.from_samples(window, cfg.labels.horizon, cfg.models.n_folds)
            del window  # the plan holds the float32 block the fits read
            fitted = fit_base_learner(plan, spec, cfg.models.seed, cfg.models.max_train_rows)
        except Exception as exc:
            step = context.get_step_execution_context().step.key
            with pool_slot(context.instance, context.run, step, DATABASE_WRITE_POOL):
                record_failed_run(TurboModeDB.at_home(turbomode.path()), context.run.run_id, rows, exc)
            raise
        context.add_output_metadata(
            {
                "samples": dg.MetadataValue.int(rows),
                "folds": dg.MetadataValue.int(len(plan.folds)),
                "fit_seconds": dg.MetadataValue.float(round(time.perf_counter() - clock, 2)),
            }
        )
        return fitted

    return fit


def _stacking_op(specs: tuple[LearnerSpec, ...], retry: dg.RetryPolicy | None) -> dg.OpDefinition:
    """The step that stacks the learners' fits and publishes; it removes the run's handed-on fits after.

    One input per learner, named after it, not one fan-in list: dagster-dask hands each worker the run's
    initial known state, and a fan-in input skips every source not known to be ready, so on Dask the
    list would arrive empty.
    """

    @dg.op(
        name="stack_ensemble",
        description="Stacks the base learners' out-of-fold probabilities with the meta-learners, then "
        "publishes the model, its SHAP log and drift baseline.",
        ins={"training_samples": dg.In(SessionDataset), **{_fit_name(spec): dg.In(BaseFit) for spec in specs}},
        out={name: dg.Out(io_manager_key=out.io_manager_key) for name, out in training_outs().items()},
        pool=DATABASE_WRITE_POOL,
        retry_policy=retry,
    )
    def stack(
        context: dg.OpExecutionContext,
        turbomode: TurboModeHome,
        step_io_manager: dg.ResourceParam[StepOutputIOManager],
        training_samples: SessionDataset,
        **fits: BaseFit,
    ) -> Iterator[dg.Output]:
        cfg = turbomode.settings()

        def train(window: pd.DataFrame) -> EnsembleResult:
            plan = TrainingPlan.from_samples(window, cfg.labels.horizon, cfg.models.n_folds)
            return stack_ensemble(
                plan,
                specs,
                {fit.name: fit for fit in fits.values()},
                cfg.labels.horizon,
                cfg.models.seed,
                cfg.models.max_train_rows,
                cfg.models.meta_max_rows,
            )

        yield from train_and_publish(context, turbomode, training_samples, train)
        for run_id in run_lineage(context.instance, context.run):  # a re-execution read its parents' fits
            step_io_manager.discard_run(run_id)

    return stack


def run_lineage(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The run's id, then its parent's, and so on: the runs whose fits a re-execution from failure reads."""
    lineage = [run.run_id]
    parent = run.parent_run_id
    while parent is not None and parent not in lineage:
        lineage.append(parent)
        record = instance.get_run_by_id(parent)
        parent = record.parent_run_id if record is not None else None
    return lineage


def _fit_name(spec: LearnerSpec) -> str:
    """A learner's step, and the stacking step's input it feeds: `fit_<learner>` (never `training_samples`)."""
    return f"fit_{spec.name}"
