"""SessionDataset: month files keyed by session, replace-by-session writes, filtered reads, loud errors.

Every test but the lock's runs twice: on a local folder and on an fsspec URL (`memory://`, the object
store stand-in), where it also checks that nothing was written to the working folder as a local path.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from upath import UPath

from turbomode_dagster.storage.session_dataset import DatasetError, SessionDataset

DAYS = ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]


def rows(days: list[str], symbols: tuple[str, ...] = ("AAA", "BBB"), value: float = 1.0) -> pd.DataFrame:
    keys = [(s, pd.Timestamp(d)) for d in days for s in symbols]
    return pd.DataFrame(
        {
            "symbol": [k[0] for k in keys],
            "date": [k[1] for k in keys],
            "x": np.arange(len(keys), dtype=float) + value,
        }
    )


@pytest.fixture(params=["local", "memory"])
def base(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path | UPath]:
    """Where the test's datasets live: a local folder, or a fresh bucket of fsspec's memory filesystem."""
    if request.param == "local":
        yield tmp_path
        return
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    bucket = f"turbomode-{uuid.uuid4().hex[:12]}"
    yield UPath(f"memory://{bucket}")
    assert list(cwd.iterdir()) == [], "a URL was written as a local path"
    if any(key.startswith(f"/{bucket}/") for key in MemoryFileSystem.store):
        fsspec.filesystem("memory").rm(f"/{bucket}", recursive=True)


def test_a_write_lands_in_month_files_and_reads_back_sorted(base: Path | UPath) -> None:
    data = SessionDataset(base / "prices")
    data.write(rows(DAYS[::-1]), DAYS)
    assert [p.name for p in data.files()] == ["2024-01.parquet", "2024-02.parquet"]
    if isinstance(base, UPath):  # the files are objects in the store, not files under the working folder
        assert sorted(
            k.rsplit("/", 1)[1] for k in MemoryFileSystem.store if k.startswith(f"/{base.path.strip('/')}/prices/")
        ) == [
            "2024-01.parquet",
            "2024-02.parquet",
            "sessions.json",
        ]
    back = data.read()
    expected = rows(DAYS[::-1]).sort_values(["date", "symbol"], ignore_index=True)
    pd.testing.assert_frame_equal(back, expected, check_exact=True)
    assert data.sessions() == [pd.Timestamp(d) for d in DAYS]


def test_rewriting_a_session_replaces_only_its_rows(base: Path | UPath) -> None:
    data = SessionDataset(base / "prices")
    data.write(rows(DAYS), DAYS)
    data.write(rows(["2024-01-31"], symbols=("AAA",), value=100.0), ["2024-01-31"])
    back = data.read()
    assert len(back) == 7, "BBB's old row for 2024-01-31 is gone with the session"
    assert back.loc[back["date"] == "2024-01-31", "x"].tolist() == [100.0]
    assert back.loc[back["date"] == "2024-01-30", "x"].tolist() == [1.0, 2.0]


def test_a_dataset_records_every_session_written_even_without_rows(base: Path | UPath) -> None:
    data = SessionDataset(base / "prices")
    assert data.written_sessions() == set()
    data.write(rows(DAYS[:1]), DAYS[:2])  # 2024-01-31 is written with no row
    assert data.written_sessions() == set(DAYS[:2])
    data.write(rows(DAYS[1:]), DAYS[1:])  # a rewrite of 01-31 keeps the record whole
    assert data.written_sessions() == set(DAYS)
    assert [p.name for p in data.files()] == ["2024-01.parquet", "2024-02.parquet"]
    (base / "prices" / "sessions.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"sessions\.json is unreadable"):
        data.written_sessions()


def test_a_dataset_from_before_the_record_keeps_none(base: Path | UPath) -> None:
    """Month files without a record cannot say which sessions had no rows: no partial record is started."""
    data = SessionDataset(base / "prices")
    data.write(rows(DAYS[:2]), DAYS[:2])
    (base / "prices" / "sessions.json").unlink()
    assert data.written_sessions() is None
    data.write(rows(DAYS[2:]), DAYS[2:])
    assert data.written_sessions() is None and not (base / "prices" / "sessions.json").exists()


def test_reads_filter_by_window_symbols_and_columns(base: Path | UPath) -> None:
    data = SessionDataset(base / "prices")
    data.write(rows(DAYS), DAYS)
    window = data.read("2024-01-31", "2024-02-01", columns=["x"], symbols=["BBB"])
    assert list(window.columns) == ["x"]
    assert len(window) == 2
    empty = data.read("2024-02-03", "2024-02-28")
    assert empty.empty and list(empty.columns) == ["symbol", "date", "x"]
    with pytest.raises(LookupError, match="no file from 2024-03-01 to the end"):
        data.read("2024-03-01")


def test_rows_outside_the_sessions_written_are_refused(base: Path | UPath) -> None:
    data = SessionDataset(base / "prices")
    with pytest.raises(DatasetError, match="rows dated 2024-02-01 are outside"):
        data.write(rows(DAYS), DAYS[:2])


def test_an_unreadable_month_file_is_named(base: Path | UPath) -> None:
    data = SessionDataset(base / "prices")
    data.write(rows(DAYS), DAYS)
    (base / "prices" / "2024-02.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match=r"2024-02\.parquet is unreadable"):
        data.read()


def test_concurrent_writers_of_one_month_lose_no_rows(tmp_path: Path) -> None:
    """Eight threads each write their own session of January; every session survives (the lock holds)."""
    days = [f"2024-01-{d:02d}" for d in range(2, 12)]
    errors: list[BaseException] = []

    def write(day: str) -> None:
        try:
            SessionDataset(tmp_path / "prices").write(rows([day]), [day])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(d,)) for d in days]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert SessionDataset(tmp_path / "prices").sessions() == [pd.Timestamp(d) for d in days]


def test_an_empty_symbol_list_selects_no_row(base: Path | UPath) -> None:
    dataset = SessionDataset(base / "x")
    frame = pd.DataFrame({"symbol": ["A", "B"], "date": pd.to_datetime(["2024-01-02"] * 2), "v": [1.0, 2.0]})
    dataset.write(frame, ["2024-01-02"])
    assert dataset.read(symbols=[]).empty and list(dataset.read(symbols=[]).columns) == ["symbol", "date", "v"]
    assert dataset.read(symbols=["B"])["v"].tolist() == [2.0]
