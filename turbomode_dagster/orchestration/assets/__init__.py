"""Thin Dagster assets, one module per stage, each calling the pure modules beside them.

The market-data, price and feature assets load history as one run over a range of sessions
(`BackfillPolicy.single_run()`); Dagster marks that parameter beta and warns
at every import of the code location, so every `turbomode` step and Dagster process printed it six
times. That one warning is silenced here; any other beta or preview warning still shows.
"""

import warnings

import dagster as dg

warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` of function `asset` is currently in beta", category=dg.BetaWarning
)
