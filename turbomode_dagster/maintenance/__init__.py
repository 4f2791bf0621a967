"""Task 6's core, free of Dagster: database integrity and VACUUM, temp cleanup, log archiving, retention."""
