"""Engines for both databases, with the SQLite pragmas and PostgreSQL schema applied.

The application runs on SQLAlchemy's asyncio engine (aiosqlite / psycopg async); Alembic
and the CLI's database commands use a synchronous engine on the same URL and settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# How long a SQLite connection waits for the write lock before failing with "database is
# locked". Writers hold it for one short transaction, so a few seconds absorbs bursts.
SQLITE_BUSY_TIMEOUT_MS = 15_000

# Pooled connections per engine (see `make_async_engine`).
POOL_SIZE = 20

# Execution option naming how a SQLite transaction begins (see `_begin_sqlite`).
SQLITE_BEGIN_OPTION = "byteor_sqlite_begin"
# Its value for autocommit reads: no BEGIN at all (the driver runs in autocommit mode, see
# `_set_sqlite_pragmas`), so every statement is its own implicit read transaction.
SQLITE_NO_BEGIN = "NONE"


def _normalise(url: str, *, asynchronous: bool) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    raise ValueError(f"unsupported database URL scheme: {parsed.drivername}")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when transactions begin; the driver's own
    # implicit BEGIN would defeat `_begin_sqlite` below.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer and the writer never blocks readers, which is
        # what lets API requests read while the worker commits.
        cursor.execute("PRAGMA journal_mode=WAL")
        # SQLite ignores REFERENCES unless asked, per connection; our cascades and the
        # integrity the code relies on need them enforced like on PostgreSQL.
        cursor.execute("PRAGMA foreign_keys=ON")
        # Wait for the write lock instead of failing at once when another writer holds it.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # In WAL mode NORMAL is still crash-safe for the database (a power loss may drop
        # the last commits, never corrupt); FULL would fsync on every commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_sqlite(connection: Any) -> None:
    # Write transactions take the write lock up front (BEGIN IMMEDIATE). A deferred
    # transaction that reads, then writes, can hit SQLITE_BUSY on the upgrade without
    # waiting for busy_timeout; taking the lock at BEGIN makes writers queue instead.
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
    if mode == SQLITE_NO_BEGIN:
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")


def _connect_args(url: URL, schema: str) -> dict[str, Any]:
    if url.get_backend_name() == "postgresql":
        # Every table lives in the configured schema; setting search_path per connection
        # keeps models schema-free so one metadata serves any schema (tests use one each).
        return {"options": f"-csearch_path={schema}"}
    return {}


def is_sqlite_file(url: str) -> bool:
    """A SQLite database on disk (a second connection sees the same data)."""
    return _is_sqlite_file(make_url(url))


def _is_sqlite_file(url: URL) -> bool:
    database = url.database
    return bool(database) and database != ":memory:" and "mode=memory" not in str(url)


def _ensure_sqlite_parent(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: Engine) -> None:
    event.listen(engine, "connect", _set_sqlite_pragmas)
    event.listen(engine, "begin", _begin_sqlite)


def make_async_engine(url: str, *, schema: str = "public", **kwargs: Any) -> AsyncEngine:
    """The application's engine for `url` (a `postgresql://` or `sqlite:///` URL)."""
    parsed = _normalise(url, asynchronous=True)
    # Connections beyond `pool_size` are closed when returned, so a pool smaller than the
    # usual concurrency opens a new connection (a new thread on aiosqlite, a new session on
    # PostgreSQL) for most requests under load: keep enough of them pooled.
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", 10)
    elif _is_sqlite_file(parsed):
        kwargs.setdefault("pool_size", POOL_SIZE)
        kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(parsed, connect_args=_connect_args(parsed, schema), **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_parent(parsed)
        _install_sqlite_hooks(engine.sync_engine)
    return engine


def make_sync_engine(url: str, *, schema: str = "public", **kwargs: Any) -> Engine:
    """A synchronous engine for migrations and offline commands."""
    parsed = _normalise(url, asynchronous=False)
    connect_args = {**_connect_args(parsed, schema), **kwargs.pop("connect_args", {})}
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_parent(parsed)
        _install_sqlite_hooks(engine)
    return engine
