"""Per-test databases on SQLite and PostgreSQL, migrated to head.

SQLite: the schema is migrated once per session into a template file, and every test gets
its own copy. PostgreSQL: every pytest process migrates its own schema once (which also
exercises BYTEOR_CLOUD_DATABASE_SCHEMA), and every test's rows are truncated afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from byteor_cloud.config import Settings
from byteor_cloud.db import migrate
from byteor_cloud.db.models import metadata

POSTGRES_SERVER_URL = os.environ.get(
    "BYTEOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
POSTGRES_DATABASE = "byteor_cloud_test"
TEST_SECRET_KEY = "test-master-key-not-secret-0123456789abcdef"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def postgres_available() -> str | None:
    """None when the PostgreSQL server answers, else the reason it does not."""
    engine = create_engine(
        POSTGRES_SERVER_URL.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": POSTGRES_DATABASE},
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{POSTGRES_DATABASE}"'))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        engine.dispose()


def postgres_database_url() -> str:
    base, _, _ = POSTGRES_SERVER_URL.rpartition("/")
    return f"{base}/{POSTGRES_DATABASE}"


def new_schema_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def drop_schema(url: str, schema: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


@dataclass
class TestDatabase:
    """One test's migrated database: what to hand to settings, the app and subprocesses."""

    backend: str
    url: str
    schema: str = "public"
    data_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    __test__ = False  # not a test class, despite the name

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": self.url,
            "database_schema": self.schema,
            "secret_key": TEST_SECRET_KEY,
        }
        if self.data_dir is not None:
            values["data_dir"] = self.data_dir
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def env(self) -> dict[str, str]:
        """Environment variables that point a subprocess at this database."""
        env = {
            "BYTEOR_CLOUD_DATABASE_URL": self.url,
            "BYTEOR_CLOUD_DATABASE_SCHEMA": self.schema,
            "BYTEOR_CLOUD_SECRET_KEY": TEST_SECRET_KEY,
        }
        if self.data_dir is not None:
            env["BYTEOR_CLOUD_DATA_DIR"] = str(self.data_dir)
        return env


class SqliteTemplate:
    """A migrated SQLite file copied for each test."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.db"
        migrate.upgrade(f"sqlite:///{self.path}")

    def fresh(self, directory: Path) -> TestDatabase:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "byteor-cloud.db"
        shutil.copyfile(self.path, target)
        return TestDatabase("sqlite", f"sqlite:///{target}", data_dir=directory)


class PostgresSchema:
    """A schema migrated once per pytest process; tests truncate their rows afterwards."""

    def __init__(self, worker: str) -> None:
        self.url = postgres_database_url()
        self.schema = new_schema_name(f"t_{worker}")
        migrate.upgrade(self.url, schema=self.schema)

    def fresh(self, directory: Path) -> TestDatabase:
        directory.mkdir(parents=True, exist_ok=True)
        return TestDatabase("postgresql", self.url, schema=self.schema, data_dir=directory)

    def truncate(self) -> None:
        tables = [table.name for table in metadata.sorted_tables]
        if not tables:
            return
        engine = create_engine(
            self.url.replace("postgresql://", "postgresql+psycopg://"),
            connect_args={"options": f"-csearch_path={self.schema}"},
        )
        try:
            with engine.begin() as connection:
                names = ", ".join(f'"{name}"' for name in tables)
                connection.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
        finally:
            engine.dispose()

    def drop(self) -> None:
        drop_schema(self.url, self.schema)
