"""The one pool every database writer runs in: limit 1, so no two write steps and no VACUUM overlap.

Its members: ingestion (the Master DB), training (registry, training runs, SHAP logs, drift baselines),
the scanner (predictions, signals), the backtest (backtest tables), drift monitoring (drift log,
retraining flags) and weekly maintenance, which checks and vacuums both databases and needs each to
itself. The limit is dagster.yaml's `concurrency: pools: default_limit: 1` (`orchestration/instance.py`).
"""

DATABASE_WRITE_POOL = "database_write"
