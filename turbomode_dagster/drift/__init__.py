"""Task 5's pure core: reference distributions, PSI / KL / KS, calibrated alert levels and the flag rule.

Nothing here imports Dagster: `baseline` turns a model's training window into a stored reference,
`statistics` compares a current window with it, `calibration` sets each statistic's alert level
from the reference's own rolling windows, and `rule` decides whether the champion needs retraining.
"""
