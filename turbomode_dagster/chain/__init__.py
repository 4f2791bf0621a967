"""The night's dependency order as plain rules over facts about runs (no Dagster imports)."""
