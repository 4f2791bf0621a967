"""Sensors: retraining when drift monitoring raises a flag.

`retrain_on_drift` launches `run_orchestrator` once per open retraining flag, for the flag's session,
with the flag id as run key (so Dagster itself refuses a second run for it) and in its cursor (so a
second evaluation requests nothing). Training the new model resolves the flag with its version.
"""

from __future__ import annotations

import json

import dagster as dg

from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.storage.drift_log import DriftLog
from turbomode_dagster.storage.turbomode_db import TurboModeDB, turbomode_db_path

FLAG_TAG = "turbomode/retrain_flag"


def build_retrain_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """The sensor that turns open retraining flags into training runs of `job`."""

    @dg.sensor(
        name="retrain_on_drift",
        job=job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description="Launches run_orchestrator once for each open retraining flag (run key = flag id), "
        "for the flag's session; the trained model resolves the flag.",
    )
    def retrain_on_drift(context: dg.SensorEvaluationContext, turbomode: TurboModeHome):
        if not turbomode_db_path(turbomode.path()).exists():
            return dg.SkipReason("no TurboMode.db yet: nothing has been trained")
        requested = set(json.loads(context.cursor)) if context.cursor else set()
        flags = [f for f in DriftLog(TurboModeDB.at_home(turbomode.path())).open_flags() if f.flag_id not in requested]
        if not flags:
            return dg.SkipReason("no open retraining flag without a run")
        context.update_cursor(json.dumps(sorted(requested | {f.flag_id for f in flags})))
        return [
            dg.RunRequest(
                run_key=flag.flag_id,
                partition_key=flag.as_of_date,
                tags={FLAG_TAG: flag.flag_id, "turbomode/flag_model_version": flag.model_version},
            )
            for flag in flags
        ]

    return retrain_on_drift
