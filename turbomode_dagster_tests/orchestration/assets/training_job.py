"""Task 2's job built from TURBOMODE_CONFIG, for tests that need a reconstructable job (re-execution)."""

from __future__ import annotations

import os

import dagster as dg

from turbomode_dagster.config import load_settings
from turbomode_dagster.definitions import build_definitions


def run_orchestrator() -> dg.JobDefinition:
    """`run_orchestrator` of the definitions that TURBOMODE_CONFIG (read now, not cached) implies."""
    return build_definitions(load_settings(os.environ["TURBOMODE_CONFIG"])).resolve_job_def("run_orchestrator")
