"""TurboMode on Dagster: a nightly market-data-to-signals pipeline as software-defined assets."""

import os

__version__ = "0.1.0"

# XGBoost's OpenMP threads spin while they wait by default. On a small machine where anything else
# competes for the cores (the Dagster daemon, a second run) that spinning slowed training many times
# over; measured on 2 cores, passive waiting made the default learners 1.7x faster when idle and 2.3x
# faster under load. Set before any module loads XGBoost's OpenMP runtime; an explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
