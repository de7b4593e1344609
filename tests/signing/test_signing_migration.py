"""Migration 0005 gives every existing org an active key, sealed with the master key, and
refuses (leaving the database at 0004) when orgs exist but no master key was given."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from sqlalchemy import inspect

from byteor_cloud.core.ids import new_id
from byteor_cloud.db import migrate
from byteor_cloud.db.engine import make_sync_engine
from byteor_cloud.db.session import Database
from byteor_cloud.db.types import UTCDateTime
from byteor_cloud.signing import keys, service
from helpers.databases import (
    TEST_SECRET_KEY,
    drop_schema,
    in_ci,
    new_schema_name,
    postgres_available,
    postgres_database_url,
)
from helpers.processes import VENV_BIN, base_env

ORGANIZATIONS = sa.table(
    "organizations",
    sa.column("id", sa.String()),
    sa.column("name", sa.String()),
    sa.column("revision", sa.Integer()),
    sa.column("created_by", sa.String()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A database (URL, schema) migrated to 0004, holding two organizations."""
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'old.db'}", "public"
    else:
        reason = postgres_available()
        if reason is not None:
            if in_ci():
                pytest.fail(f"PostgreSQL unavailable in CI: {reason}")
            pytest.skip(reason)
        url, schema = postgres_database_url(), new_schema_name("sig")
    try:
        migrate.upgrade(url, schema=schema, revision="0004")
        now = datetime.now(UTC)
        engine = make_sync_engine(url, schema=schema)
        try:
            with engine.begin() as connection:
                connection.execute(
                    sa.insert(ORGANIZATIONS),
                    [
                        {"id": new_id(), "name": name, "revision": 1, "created_by": None}
                        | {"created_at": now, "updated_at": now}
                        for name in ("Old One", "Old Two")
                    ],
                )
        finally:
            engine.dispose()
        yield url, schema
    finally:
        if request.param == "postgresql":
            drop_schema(url, schema)


def _state(url: str, schema: str) -> tuple[tuple[str, ...], bool, list[tuple[str, str, str]]]:
    engine = make_sync_engine(url, schema=schema)
    try:
        with engine.connect() as connection:
            revision = migrate.current_revisions(connection)
            has_table = inspect(connection).has_table("signing_keys")
            rows: list[tuple[str, str, str]] = []
            if has_table:
                result = connection.execute(
                    sa.text(
                        "SELECT o.id, k.status, k.id FROM organizations o "
                        "LEFT JOIN signing_keys k ON k.org_id = o.id ORDER BY o.id"
                    )
                )
                rows = [(row[0], row[1], row[2]) for row in result]
            return revision, has_table, rows
    finally:
        engine.dispose()


def test_without_the_master_key_the_upgrade_fails_clearly(
    database_at_0004: tuple[str, str],
) -> None:
    url, schema = database_at_0004
    with pytest.raises(RuntimeError, match=r"needs the master key.*BYTEOR_CLOUD_SECRET_KEY"):
        migrate.upgrade(url, schema=schema)
    revision, has_table, _ = _state(url, schema)
    assert revision == ("0004",)
    assert not has_table


async def test_existing_orgs_get_an_active_key_through_the_migration(
    database_at_0004: tuple[str, str], tmp_path: Path
) -> None:
    url, schema = database_at_0004
    # Through the real command, which hands over the configured master key.
    env = base_env(
        {
            "BYTEOR_CLOUD_DATABASE_URL": url,
            "BYTEOR_CLOUD_DATABASE_SCHEMA": schema,
            "BYTEOR_CLOUD_SECRET_KEY": TEST_SECRET_KEY,
            "BYTEOR_CLOUD_DATA_DIR": str(tmp_path / "data"),
        }
    )
    command = functools.partial(
        subprocess.run,
        [str(VENV_BIN / "byteor-cloud"), "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    upgraded = await anyio.to_thread.run_sync(command)
    assert upgraded.returncode == 0, upgraded.stderr
    revision, _, rows = _state(url, schema)
    assert revision == tuple(migrate.script_heads())
    assert [status for _, status, _ in rows] == ["active", "active"]
    assert len({kid for _, _, kid in rows}) == 2

    database = Database(url, schema=schema)
    try:
        for org_id, _, kid in rows:
            async with database.transaction(readonly=True) as session:
                signed_kid, signature = await service.sign(
                    session,
                    org_id=org_id,
                    payload=b"after the migration",
                    box=keys.signing_box(TEST_SECRET_KEY),
                )
                document = await service.signing_keys_document(session, org_id)
            assert signed_kid == kid
            assert service.verify(document["keys"], kid, b"after the migration", signature)
    finally:
        await database.dispose()
