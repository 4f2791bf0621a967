"""Drill: readers query the Master DB while ingestion writes; none may see "database is locked"."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import adbc_driver_manager.dbapi
import numpy as np
import pandas as pd

from turbomode_dagster import calendar
from turbomode_dagster.storage.market_db import MarketDataReader, MarketDBWriter

READERS = 4
TRANSACTIONS = 6
SYMBOLS_PER_TRANSACTION = 30


def _bars(batch: int, days: list[str]) -> pd.DataFrame:
    """A batch of plausible bars for 40 new symbols over `days`."""
    symbols = [f"S{batch:02d}{i:02d}" for i in range(SYMBOLS_PER_TRANSACTION)]
    frame = pd.MultiIndex.from_product([symbols, days], names=["symbol", "date"]).to_frame(index=False)
    close = 100 + np.arange(len(frame)) % 7
    return frame.assign(open=close, high=close + 1.0, low=close - 1.0, close=close, volume=1_000_000, source="drill")


def test_readers_beside_a_writer_never_see_a_locked_database(db_path: Path) -> None:
    days = calendar.sessions("2025-11-03", "2026-11-25")
    writer = MarketDBWriter(db_path)
    errors: list[str] = []
    queries = [0] * READERS
    done = threading.Event()

    def read(slot: int) -> None:
        reader = MarketDataReader(db_path)
        try:
            while not done.is_set():
                reader.bars(start=days[-1], end=days[-1])
                reader.closes()
                queries[slot] += 2
        except adbc_driver_manager.dbapi.Error as exc:
            errors.append(f"reader {slot}: {exc}")
        finally:
            reader.close()

    threads = [threading.Thread(target=read, args=(slot,)) for slot in range(READERS)]
    for thread in threads:
        thread.start()
    try:
        for batch in range(TRANSACTIONS):
            with writer.transaction():
                writer.upsert("daily_bars", _bars(batch, days), "source", f"t{batch}")
            time.sleep(0.01)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
        writer.close()
    assert errors == []
    assert min(queries) > 0, f"every reader must have run queries during the writes: {queries}"
    reader = MarketDataReader(db_path)
    try:
        assert len(reader.closes()) == TRANSACTIONS * SYMBOLS_PER_TRANSACTION * len(days)
    finally:
        reader.close()
