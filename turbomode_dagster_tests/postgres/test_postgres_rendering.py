"""The PostgreSQL dagster.yaml without a server: what the file names, and that re-rendering keeps the storage."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from turbomode_dagster.config import POSTGRES_ENV, ConfigError, load_settings
from turbomode_dagster.orchestration.instance import (
    instance_yaml,
    prepare_dagster_home,
    rendered_storage,
    write_dagster_home,
)


@pytest.fixture
def pg_env(monkeypatch: pytest.MonkeyPatch) -> None:
    values = ("db.internal", "5432", "dagster", "s3cret-not-in-file", "dagster")
    for var, value in zip(POSTGRES_ENV.values(), values, strict=True):
        monkeypatch.setenv(var, value)


def test_the_postgres_storage_block_reads_every_field_from_the_environment(small_settings) -> None:
    storage = yaml.safe_load(instance_yaml(small_settings, "postgres"))["storage"]
    assert storage == {
        "postgres": {
            "postgres_db": {
                "scheme": "postgresql+psycopg2",
                **{field_name: {"env": var} for field_name, var in POSTGRES_ENV.items()},
            }
        }
    }
    assert "storage" not in yaml.safe_load(instance_yaml(small_settings)), "SQLite is Dagster's default"


def test_the_folder_under_the_home_stays_on_postgres_when_re_rendered(
    pg_env, small_settings, make_config, tmp_path: Path
) -> None:
    folder = tmp_path / "home" / "dagster_home"
    write_dagster_home(small_settings, folder, "postgres")
    assert rendered_storage(folder / "dagster.yaml") == "postgres"
    wider = load_settings(make_config({"global_settings.max_concurrent_jobs": 3}))
    assert prepare_dagster_home(wider, tmp_path / "home") == folder
    assert (folder / "dagster.yaml").read_text() == instance_yaml(wider, "postgres")
    assert "s3cret-not-in-file" not in (folder / "dagster.yaml").read_text()


def test_a_sqlite_missing_or_broken_file_is_sqlite(small_settings, tmp_path: Path) -> None:
    assert rendered_storage(tmp_path / "absent.yaml") == "sqlite"
    (tmp_path / "broken.yaml").write_text("storage: [postgres\n")
    assert rendered_storage(tmp_path / "broken.yaml") == "sqlite"
    assert rendered_storage(write_dagster_home(small_settings, tmp_path)) == "sqlite"


def test_rendering_postgres_without_the_variables_names_them_and_writes_nothing(
    small_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in POSTGRES_ENV.values():
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError) as raised:
        write_dagster_home(small_settings, tmp_path / "dh", "postgres")
    assert [p.split(":")[0] for p in raised.value.problems] == list(POSTGRES_ENV.values())
    assert not (tmp_path / "dh" / "dagster.yaml").exists()
