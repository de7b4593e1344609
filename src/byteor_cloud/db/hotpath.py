"""Connections for the agent hot path: single statements without a pool checkout.

Thousands of agents heartbeat and poll; each request is one or two statements that stand
alone (autocommit). Checking a connection out of the pool and back costs more than the
statement, so this keeps connections for them:

- **SQLite**: one synchronous connection used directly on the event loop thread. A read
  in WAL mode never waits for a lock and takes tens of microseconds, far less than the
  four thread hand-offs aiosqlite pays per statement. The connection's `busy_timeout`
  is 0, so a write that would wait for the lock (another writer holds it) fails at once
  with `HotPathBusy` instead of blocking the loop; callers then take the ordinary pooled
  path, which waits. The loop runs one coroutine at a time and these calls never yield,
  so the one connection is never used by two requests at once.
- **PostgreSQL**: a few asynchronous connections kept open in autocommit mode, handed
  out without the pool's pre-ping and reset round trips. A statement that finds its
  connection dead runs once more on a fresh one (hot statements are safe to repeat).

Only statements that are correct on their own belong here (see `agents.runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from byteor_cloud.db.engine import SQLITE_BEGIN_OPTION, SQLITE_NO_BEGIN, make_sync_engine

# Kept PostgreSQL connections per process; more concurrent requests wait for one.
POSTGRES_HOT_CONNECTIONS = 8

# Execution option of a SELECT whose rows need no conversion beyond the driver's own (text,
# numbers, JSON, timestamps with a time zone): on PostgreSQL the hot path runs it straight
# on psycopg, compiled once, as a prepared statement, skipping SQLAlchemy's asyncio adapter
# (measured ~175 µs against ~440 µs per credential read). Rows are named tuples whose
# fields are the statement's column labels.
PLAIN_ROWS = "byteor_plain_rows"


class HotPathBusy(Exception):
    """The statement could not run without waiting (SQLite's write lock is held)."""


class HotConnection:
    """What hot-path code executes on: `await execute(statement, params)` → a result with
    `.all()` / `.rowcount`, like `AsyncConnection.execute`."""

    async def execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        raise NotImplementedError


class _SqliteHot(HotConnection):
    def __init__(self, url: str) -> None:
        # One connection, shared by every request of this process (see the module doc).
        self.engine: Engine = make_sync_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        ).execution_options(**{SQLITE_BEGIN_OPTION: SQLITE_NO_BEGIN})
        self._connection = self.engine.connect()
        self._connection.exec_driver_sql("PRAGMA busy_timeout=0")

    async def execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        try:
            result = self._connection.execute(statement, dict(params or {}))
            if result.returns_rows:
                return _Buffered(list(result.all()), result.rowcount)
            return result
        except OperationalError as exc:
            if "locked" in str(exc.orig) or "busy" in str(exc.orig):
                raise HotPathBusy(str(exc.orig)) from exc
            raise

    def close(self) -> None:
        self._connection.close()
        self.engine.dispose()


class _Buffered:
    """Rows read in full (the cursor is closed at once)."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list[Any]:
        return self._rows


class _PostgresHot(HotConnection):
    def __init__(self, path: HotPath, connection: AsyncConnection) -> None:
        self._path = path
        self.connection = connection
        self._driver: Any = None

    async def execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return await self._run(statement, params)
        except (DBAPIError, psycopg.OperationalError) as exc:
            if isinstance(exc, DBAPIError) and not (
                exc.connection_invalidated or isinstance(exc, OperationalError)
            ):
                raise
        # The kept connection died (a server restart, an idle timeout): what the pool's
        # pre-ping would have caught. Hot statements stand alone and are safe to repeat,
        # so run it once more on a fresh connection; a second failure is reported.
        with contextlib.suppress(Exception):
            await self.connection.invalidate()
            await self.connection.close()
        self.connection, self._driver = await self._path.engine.connect(), None
        return await self._run(statement, params)

    async def _run(self, statement: Executable, params: Mapping[str, Any] | None) -> Any:
        if statement.get_execution_options().get(PLAIN_ROWS):
            return _Buffered(await self._plain(statement, params or {}), -1)
        result = await self.connection.execute(statement, dict(params or {}))
        if result.returns_rows:
            return _Buffered(list(result.all()), result.rowcount)
        return result

    async def _plain(self, statement: Executable, params: Mapping[str, Any]) -> list[Any]:
        if self._driver is None:
            raw = await self.connection.get_raw_connection()
            self._driver = raw.driver_connection
        cursor = self._driver.cursor(row_factory=namedtuple_row)
        try:
            sql, defaults = self._path.compiled_sql(statement)
            for observe in self._path.observers:
                observe(sql)
            await cursor.execute(sql, {**defaults, **params}, prepare=True)
            return list(await cursor.fetchall())
        finally:
            await cursor.close()


class HotPath:
    """Per process, per database (see the module doc)."""

    def __init__(
        self, url: str, engine: AsyncEngine, *, is_sqlite: bool, sqlite_file: bool
    ) -> None:
        self._url = url
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._compiled: dict[Executable, tuple[str, dict[str, Any]]] = {}
        # Called with the SQL of each statement run straight on the driver (which
        # SQLAlchemy's events do not see); `Database.observe_statements` uses it.
        self.observers: list[Callable[[str], None]] = []
        self._is_sqlite = is_sqlite
        self._sqlite_file = sqlite_file
        self._sqlite: _SqliteHot | None = None
        self._idle: list[_PostgresHot] = []
        self._open = 0
        self._available = asyncio.Condition() if not is_sqlite else None

    def compiled_sql(self, statement: Executable) -> tuple[str, dict[str, Any]]:
        """The statement's SQL for this dialect and the values of the literals it binds,
        compiled once (`PLAIN_ROWS` statements are module constants)."""
        entry = self._compiled.get(statement)
        if entry is None:
            compiled = statement.compile(dialect=self.engine.dialect)  # type: ignore[attr-defined]
            entry = (str(compiled), dict(compiled.params))
            self._compiled[statement] = entry
        return entry

    @property
    def sqlite_engine(self) -> Engine | None:
        """The synchronous SQLite engine, once opened (tests listen to its statements)."""
        return self._sqlite.engine if self._sqlite is not None else None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[HotConnection]:
        if self._is_sqlite:
            if not self._sqlite_file:
                raise HotPathBusy("an in-memory database has no second connection")
            if self._sqlite is None:
                self._sqlite = _SqliteHot(self._url)
            yield self._sqlite
            return
        hot = await self._take()
        healthy = True
        try:
            yield hot
        except DBAPIError as exc:
            healthy = not (exc.connection_invalidated or isinstance(exc, OperationalError))
            raise
        except asyncio.CancelledError:
            healthy = False  # a statement may still be running on it
            raise
        finally:
            if healthy:
                await self._give_back(hot)
            else:
                await self._discard(hot)

    async def _take(self) -> _PostgresHot:
        assert self._available is not None
        async with self._available:
            while not self._idle and self._open >= POSTGRES_HOT_CONNECTIONS:
                await self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return _PostgresHot(self, await self.engine.connect())
        except BaseException:
            async with self._available:
                self._open -= 1
                self._available.notify()
            raise

    async def _give_back(self, hot: _PostgresHot) -> None:
        assert self._available is not None
        async with self._available:
            self._idle.append(hot)
            self._available.notify()

    async def _discard(self, hot: _PostgresHot) -> None:
        assert self._available is not None
        try:
            await hot.connection.close()
        finally:
            async with self._available:
                self._open -= 1
                self._available.notify()

    async def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None
        for hot in self._idle:
            await hot.connection.close()
        self._open -= len(self._idle)
        self._idle.clear()
