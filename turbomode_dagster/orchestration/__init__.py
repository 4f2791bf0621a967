"""Dagster wiring only: assets, jobs, schedules, sensors, resources, IO managers and the instance."""
