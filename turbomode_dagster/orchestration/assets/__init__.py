"""Thin Dagster assets, one module per stage, each calling the pure modules beside them."""
