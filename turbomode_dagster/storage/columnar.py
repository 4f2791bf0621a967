"""The Master DB's bulk-read path: SQLite straight into Arrow through ADBC, with no Python object per row.

At 3,000 symbols x 10 years (7.5 M bars) `pandas.read_sql` through `sqlite3` took 4 to 5 times as long as
this path into the same frame (benchmarks/bench_read.py). SQLite stays the system of record; this only reads it.

Read-only, by how it is opened: the file is opened through a `mode=ro` URI (SQLite refuses every write to
it), with `PRAGMA query_only = ON` (which also refuses writes to any attached file). ADBC offers no
authorizer, so unlike the `sqlite3` handle nothing could deny an `ATTACH` or a `PRAGMA query_only = OFF`:
the connection is therefore private to `ArrowReader`, which runs only the SELECTs its caller's code holds
and binds every value as a parameter.

A reader sees one snapshot: its statements run in one read transaction, opened by its first query, so
bars, splits and dividends read together agree even while ingestion commits beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import adbc_driver_sqlite
import adbc_driver_sqlite.dbapi
import pandas as pd
import pyarrow as pa

from turbomode_dagster.storage.sqlite import BUSY_TIMEOUT_MS, DatabaseMissing

# The driver infers each column's type from the first batch of a result (1,024 rows by default) and fails
# when a column that was all NULL there (taken as int64) holds a REAL or TEXT later. One batch per result
# (the largest size the driver accepts) makes it infer from every row; it allocates as rows arrive.
_ONE_BATCH = {adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: 2**31 - 2}


class ArrowReader:
    """A read-only ADBC connection to one SQLite file that returns query results as typed frames."""

    def __init__(self, path: Path):
        if not path.exists():
            raise DatabaseMissing(f"{path} does not exist yet: run ingestion (job run_ingestion) first")
        self._con = adbc_driver_sqlite.dbapi.connect(f"{path.resolve().as_uri()}?mode=ro", autocommit=False)
        try:
            with self._con.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                cursor.execute("PRAGMA query_only = ON")
        except BaseException:
            self._con.close()
            raise

    def close(self) -> None:
        """End the read transaction and close the connection."""
        self._con.close()

    def table(self, sql: str, params: Sequence[object], schema: pa.Schema) -> pa.Table:
        """Run one SELECT with bound parameters; the result is cast to `schema` (names and types, in order)."""
        with self._con.cursor() as cursor:
            cursor.adbc_statement.set_options(**_ONE_BATCH)
            cursor.execute(sql, list(params) or None)
            result = cursor.fetch_arrow_table()
        if result.column_names != schema.names:
            raise ValueError(f"query returned columns {result.column_names}, expected {schema.names}: {sql}")
        # An empty or all-NULL column comes back as int64; the declared type is what callers get.
        return result.cast(schema)

    def frame(self, sql: str, params: Sequence[object], schema: pa.Schema) -> pd.DataFrame:
        """`table` as pandas: TEXT as Python str (None for NULL), REAL as float64 (NaN), INTEGER as int64."""
        return self.table(sql, params, schema).to_pandas()
