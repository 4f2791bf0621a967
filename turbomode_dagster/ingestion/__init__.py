"""Task 1 without Dagster: plan what to fetch, validate it, write it to the Master DB in one transaction."""
