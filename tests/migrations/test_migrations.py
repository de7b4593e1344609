"""One migration tree on both databases: one head, reversible, and agreeing with the models."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from byteor_cloud.db import migrate
from byteor_cloud.db.engine import make_sync_engine
from byteor_cloud.db.models import metadata
from helpers.databases import (
    TEST_SECRET_KEY,
    drop_schema,
    in_ci,
    new_schema_name,
    postgres_available,
    postgres_database_url,
)
from helpers.processes import VENV_BIN, base_env


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A database (URL, schema) that has never been migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}", "public"
        return
    reason = postgres_available()
    if reason is not None:
        if in_ci():
            pytest.fail(f"PostgreSQL unavailable in CI: {reason}")
        pytest.skip(reason)
    url, schema = postgres_database_url(), new_schema_name("mig")
    try:
        yield url, schema
    finally:
        drop_schema(url, schema)


def _tables(url: str, schema: str) -> set[str]:
    engine = make_sync_engine(url, schema=schema)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def _revision(url: str, schema: str) -> tuple[str, ...]:
    engine = make_sync_engine(url, schema=schema)
    try:
        with engine.connect() as connection:
            return migrate.current_revisions(connection)
    finally:
        engine.dispose()


def test_the_tree_has_exactly_one_head() -> None:
    assert len(migrate.script_heads()) == 1


def test_upgrade_downgrade_upgrade(empty_database: tuple[str, str]) -> None:
    url, schema = empty_database
    model_tables = {table.name for table in metadata.sorted_tables}
    migrate.upgrade(url, schema=schema)
    assert _revision(url, schema) == tuple(migrate.script_heads())
    assert model_tables <= _tables(url, schema)
    migrate.downgrade(url, schema=schema, revision="base")
    assert _revision(url, schema) == ()
    assert _tables(url, schema) & model_tables == set()
    migrate.upgrade(url, schema=schema)
    assert _revision(url, schema) == tuple(migrate.script_heads())
    assert model_tables <= _tables(url, schema)


def test_models_match_migrations(empty_database: tuple[str, str]) -> None:
    url, schema = empty_database
    migrate.upgrade(url, schema=schema)
    assert migrate.schema_differences(url, schema=schema) == []


def test_schema_differences_are_detected(empty_database: tuple[str, str]) -> None:
    # A database left at base lacks every model table: the check must name each of them.
    url, schema = empty_database
    migrate.upgrade(url, schema=schema, revision="base")
    differences = migrate.schema_differences(url, schema=schema)
    added = {diff[1].name for diff in differences if diff[0] == "add_table"}
    assert added == {table.name for table in metadata.sorted_tables}
    assert added  # the schema has tables, so the check is not vacuous


@pytest.fixture
def empty_postgres_schema() -> Iterator[tuple[str, str]]:
    reason = postgres_available()
    if reason is not None:
        if in_ci():
            pytest.fail(f"PostgreSQL unavailable in CI: {reason}")
        pytest.skip(reason)
    url, schema = postgres_database_url(), new_schema_name("mig")
    try:
        yield url, schema
    finally:
        drop_schema(url, schema)


def test_postgres_tables_live_in_the_configured_schema(
    empty_postgres_schema: tuple[str, str],
) -> None:
    url, schema = empty_postgres_schema
    migrate.upgrade(url, schema=schema)
    engine = make_sync_engine(url, schema="public")
    try:
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names(schema=schema))
    finally:
        engine.dispose()
    assert names == {"alembic_version"} | {table.name for table in metadata.sorted_tables}


def test_db_upgrade_and_check_commands(empty_database: tuple[str, str], tmp_path: Path) -> None:
    url, schema = empty_database
    env = base_env(
        {
            "BYTEOR_CLOUD_DATABASE_URL": url,
            "BYTEOR_CLOUD_DATABASE_SCHEMA": schema,
            "BYTEOR_CLOUD_SECRET_KEY": TEST_SECRET_KEY,
            "BYTEOR_CLOUD_DATA_DIR": str(tmp_path / "data"),
        }
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "byteor-cloud"), "db", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    upgraded = run("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = run("check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("ok: one head")
