"""Log archiving by age: old logs land in one verified .tar.gz and leave; young ones stay; a second run is a no-op."""

from __future__ import annotations

import datetime as dt
import tarfile
from pathlib import Path

import pytest

from turbomode_dagster.config import Maintenance
from turbomode_dagster.maintenance import logs
from turbomode_dagster.maintenance.logs import ArchiveNotVerified, archive_logs, compute_log_files, platform_log_files
from turbomode_dagster.maintenance.weekly import run_maintenance
from turbomode_dagster_tests.maintenance.helpers import write_aged

DAY = 86_400.0
NOW = dt.datetime(2026, 12, 6, 7, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def logged(tmp_path: Path) -> dict[str, Path]:
    """A home with platform logs and a Dagster storage folder with step logs of an old and a new run."""
    now = NOW.timestamp()
    home, storage = tmp_path / "home", tmp_path / "dagster_home" / "storage"
    return {
        "home": home,
        "storage": storage,
        "old_platform": write_aged(home / "logs" / "dagster-2026-10.log", b"daemon started\n" * 50, 40 * DAY, now),
        "new_platform": write_aged(home / "logs" / "dagster.log", b"tick\n", 1 * DAY, now),
        "old_out": write_aged(
            storage / "run-old" / "compute_logs" / "abcdef.out", b"step output\n" * 20, 31 * DAY, now
        ),
        "old_err": write_aged(storage / "run-old" / "compute_logs" / "abcdef.err", b"warning\n", 31 * DAY, now),
        "new_err": write_aged(storage / "run-new" / "compute_logs" / "123456.err", b"fresh\n", 2 * DAY, now),
        "not_a_log": write_aged(storage / "run-old" / "file_manager" / "x.bin", b"\0", 90 * DAY, now),
    }


def _archive(logged: dict[str, Path]) -> logs.ArchiveResult:
    home, storage = logged["home"], logged["storage"]
    sources = {
        "turbomode": (home / "logs", platform_log_files(home)),
        "dagster_compute_logs": (storage, compute_log_files(storage)),
    }
    return archive_logs(home / "archive", sources, NOW.timestamp() - 30 * DAY, NOW)


def test_logs_older_than_the_retention_are_archived_with_their_bytes_then_removed(logged: dict[str, Path]) -> None:
    originals = {name: logged[name].read_bytes() for name in ("old_platform", "old_out", "old_err")}
    result = _archive(logged)
    assert result.archive == logged["home"] / "archive" / "logs-20261206T070000Z.tar.gz"
    with tarfile.open(result.archive, "r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    assert members == {
        "turbomode/dagster-2026-10.log": originals["old_platform"],
        "dagster_compute_logs/run-old/compute_logs/abcdef.out": originals["old_out"],
        "dagster_compute_logs/run-old/compute_logs/abcdef.err": originals["old_err"],
    }
    assert result.files == 3 and result.archive_bytes == result.archive.stat().st_size
    assert result.sources["turbomode"].bytes == len(originals["old_platform"])
    assert not any(logged[name].exists() for name in originals)
    assert not (logged["storage"] / "run-old" / "compute_logs").exists(), "the emptied folder goes"
    assert logged["not_a_log"].exists(), "only compute_logs/ is archived from Dagster's storage"
    assert logged["new_platform"].exists() and logged["new_err"].exists()


def test_a_second_run_in_a_row_archives_and_removes_nothing(logged: dict[str, Path]) -> None:
    first = _archive(logged)
    second = _archive(logged)
    assert second.archive is None and second.files == 0 and second.archive_bytes == 0
    assert sorted((logged["home"] / "archive").iterdir()) == [first.archive]


def test_an_archive_that_does_not_hold_the_bytes_removes_nothing(
    logged: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    add = tarfile.TarFile.addfile

    def truncating_addfile(self, tarinfo, fileobj=None, **kwargs):
        if tarinfo.name.endswith("abcdef.out"):  # a disk that silently loses the end of one member
            data = fileobj.read()[:-1]
            tarinfo.size = len(data)
            fileobj = __import__("io").BytesIO(data)
        return add(self, tarinfo, fileobj, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "addfile", truncating_addfile)
    with pytest.raises(ArchiveNotVerified, match=r"abcdef\.out"):
        _archive(logged)
    assert logged["old_out"].exists() and logged["old_err"].exists() and logged["old_platform"].exists()


def test_archives_older_than_their_retention_go_and_younger_ones_and_other_files_stay(tmp_path: Path) -> None:
    now, archive = NOW.timestamp(), tmp_path / "archive"
    old = write_aged(archive / "logs-20250101T070000Z.tar.gz", b"old archive", 400 * DAY, now)
    young = write_aged(archive / "logs-20261101T070000Z.tar.gz", b"young archive", 35 * DAY, now)
    other = write_aged(archive / "notes.txt", b"the user's", 900 * DAY, now)
    outcome = logs.prune_archives(archive, now - 365 * DAY)
    assert (outcome.files, outcome.bytes, outcome.removed) == (1, len(b"old archive"), [old])
    assert young.exists() and other.exists() and not old.exists()
    assert logs.prune_archives(tmp_path / "no-archive-yet", now).files == 0


def test_the_weekly_pass_prunes_archives_only_when_a_retention_is_set(tmp_path: Path) -> None:
    home, now = tmp_path / "home", NOW.timestamp()
    old = write_aged(home / "archive" / "logs-20250101T070000Z.tar.gz", b"old archive", 400 * DAY, now)
    kept = run_maintenance(home, home / "market_data.db", None, Maintenance(), NOW)
    assert old.exists() and "log archives" not in set(kept.summary_table()["target"])
    pruned = run_maintenance(home, home / "market_data.db", None, Maintenance(archive_retention_days=365), NOW)
    row = pruned.summary_table().set_index("target").loc["log archives"]
    assert not old.exists() and (row["files"], row["result"]) == (1, "removed")
