"""Schema migrations: upgrade, downgrade, and the check that models and migrations agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from byteor_cloud.db.engine import make_sync_engine
from byteor_cloud.db.models import metadata

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def _config(connection: Connection | None = None, *, master_key: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    # Data migrations that encrypt (0005: signing keys for existing orgs) read it here.
    config.attributes["master_key"] = master_key
    return config


def script_heads() -> list[str]:
    """The head revisions of the migration tree (exactly one when the tree is healthy)."""
    return list(ScriptDirectory.from_config(_config()).get_heads())


def _engine(url: str, schema: str) -> Engine:
    engine = make_sync_engine(url, schema=schema)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # The schema must exist before search_path can point into it.
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    return engine


def upgrade(
    url: str,
    *,
    schema: str = "public",
    revision: str = "head",
    master_key: str | None = None,
) -> None:
    """Migrate the database at `url` up to `revision`.

    `master_key` is needed only by data migrations that write encrypted values for rows
    that already exist (0005 refuses to backfill signing keys without it).
    """
    engine = _engine(url, schema)
    try:
        with engine.connect() as connection:
            command.upgrade(_config(connection, master_key=master_key), revision)
            connection.commit()
    finally:
        engine.dispose()


def downgrade(url: str, *, schema: str = "public", revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision`."""
    engine = _engine(url, schema)
    try:
        with engine.connect() as connection:
            command.downgrade(_config(connection), revision)
            connection.commit()
    finally:
        engine.dispose()


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions the connected database is at (empty when never migrated)."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


async def current_revisions_async(connection: AsyncConnection) -> tuple[str, ...]:
    """Like `current_revisions`, for the app's async connections; cheap enough for /readyz."""
    if not await connection.run_sync(lambda sync: inspect(sync).has_table(VERSION_TABLE)):
        return ()
    rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
    return tuple(row[0] for row in rows)


def schema_differences(url: str, *, schema: str = "public") -> list[Any]:
    """What differs between the models and a database migrated to head (empty = agree)."""
    engine = _engine(url, schema)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()
