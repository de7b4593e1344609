"""Connections for the agent hot path: single statements straight on the driver.

Thousands of agents heartbeat and poll; each request is one or two statements that stand
alone (autocommit). Checking a connection out of the pool, and SQLAlchemy's execution
machinery around each statement, cost several times the statement itself, so this keeps
connections for them and runs Core statements on the driver directly:

- **Compiled once.** A hot statement is a module-level Core statement (`HotConnection`
  takes any, but caches by identity); its SQL, parameter order and the bind processors of
  its column types are worked out once per dialect, so values are stored exactly as the
  ORM stores them (JSON text, UTC timestamps), and rows come back as the driver gives them
  (`HotRows.convert` applies a column's result processor where the caller needs one).
- **SQLite**: one synchronous connection used directly on the event loop thread. A read
  in WAL mode never waits for a lock and takes a few microseconds, far less than the four
  thread hand-offs aiosqlite pays per statement. The connection's `busy_timeout` is 0, so
  a write that would wait for the lock (another writer holds it) fails at once with
  `HotPathBusy` instead of blocking the loop; callers then take the ordinary pooled path,
  which waits. The loop runs one coroutine at a time and these calls never yield, so the
  one connection is never used by two requests at once.
- **PostgreSQL**: a few psycopg connections kept open in autocommit mode, handed out
  without the pool's pre-ping and reset round trips, each statement prepared on the
  server. A statement that finds its connection dead runs once more on a fresh one (hot
  statements are safe to repeat).

Only statements that are correct on their own belong here (see `agents.hot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from byteor_cloud.db.engine import make_sync_engine

log = logging.getLogger(__name__)

# Kept PostgreSQL connections per process; more concurrent requests wait for one.
POSTGRES_HOT_CONNECTIONS = 8
# Compiled statements kept per process. Hot statements are module constants (a few dozen);
# the bound only stops a caller that builds statements per call from growing it for ever.
_MAX_COMPILED = 256


class HotPathBusy(Exception):
    """The statement could not run here: it would have to wait (SQLite's write lock is
    held), or the batch it joined failed. The caller takes the ordinary pooled path."""


Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # SQLite binds by position, psycopg by name: the parameter names in SQL order, or ().
    positions: tuple[str, ...]
    binders: tuple[tuple[str, Processor], ...]
    literals: Mapping[str, Any]
    results: tuple[Processor | None, ...]

    def parameters(self, params: Mapping[str, Any]) -> Any:
        values = {**self.literals, **params}
        for name, process in self.binders:
            if name in values:
                values[name] = process(values[name])
        if self.positions:
            return tuple(values[name] for name in self.positions)
        return values


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    binders = []
    for name, bind in compiled.binds.items():
        process = bind.type._cached_bind_processor(dialect)
        if process is not None:
            binders.append((name, process))
    results: tuple[Processor | None, ...] = ()
    selected = getattr(statement, "selected_columns", None)
    if selected is not None:
        results = tuple(column.type._cached_result_processor(dialect, None) for column in selected)
    return _Compiled(
        sql=str(compiled),
        positions=tuple(compiled.positiontup or ()),
        binders=tuple(binders),
        # Values the statement carries itself (`status != 'retired'`); required parameters
        # are left out so that forgetting one is a KeyError, not a silent NULL.
        literals={
            name: value
            for name, value in compiled.params.items()
            if not compiled.binds[name].required
        },
        results=results,
    )


@dataclass(frozen=True)
class HotRows:
    """The rows of a hot SELECT as the driver returned them."""

    rows: list[tuple[Any, ...]]
    results: tuple[Processor | None, ...]

    def convert(self, index: int, value: Any) -> Any:
        """`value` (column `index` of a row) as the ORM would have loaded it."""
        process = self.results[index]
        return process(value) if process is not None and value is not None else value


class HotConnection:
    """What hot-path code runs statements on."""

    async def fetch(
        self, statement: ClauseElement, params: Mapping[str, Any] | None = None
    ) -> HotRows:
        """Run a SELECT; rows as the driver returns them."""
        raise NotImplementedError

    async def write(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> int:
        """Run an INSERT/UPDATE/DELETE (it commits by itself); the number of rows it hit."""
        raise NotImplementedError


class _SqliteHot(HotConnection):
    def __init__(self, path: HotPath, url: str) -> None:
        # One connection, shared by every request of this process (see the module doc).
        # Opened through SQLAlchemy so it gets the same pragmas as every other connection;
        # the driver runs in autocommit (`isolation_level = None`, set by those hooks).
        self._path = path
        self.engine: Engine = make_sync_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        self._connection = self.engine.connect()
        self._driver: sqlite3.Connection = self._connection.connection.driver_connection  # type: ignore[assignment]
        self._driver.execute("PRAGMA busy_timeout=0")

    def _run(self, statement: ClauseElement, params: Mapping[str, Any] | None) -> Any:
        compiled = self._path.compiled(statement)
        self._path.observe(compiled.sql)
        try:
            return compiled, self._driver.execute(compiled.sql, compiled.parameters(params or {}))
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise HotPathBusy(str(exc)) from exc
            raise

    async def fetch(
        self, statement: ClauseElement, params: Mapping[str, Any] | None = None
    ) -> HotRows:
        compiled, cursor = self._run(statement, params)
        return HotRows(cursor.fetchall(), compiled.results)

    async def write(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> int:
        _compiled, cursor = self._run(statement, params)
        return int(cursor.rowcount)

    def close(self) -> None:
        self._connection.close()
        self.engine.dispose()


class _PostgresHot(HotConnection):
    def __init__(self, path: HotPath, connection: AsyncConnection, driver: Any) -> None:
        self._path = path
        self.connection = connection
        self._driver: psycopg.AsyncConnection[Any] = driver

    @classmethod
    async def open(cls, path: HotPath) -> _PostgresHot:
        connection = await path.engine.connect()
        raw = await connection.get_raw_connection()
        return cls(path, connection, raw.driver_connection)

    async def fetch(
        self, statement: ClauseElement, params: Mapping[str, Any] | None = None
    ) -> HotRows:
        compiled = self._path.compiled(statement)
        rows, _ = await self._retrying(compiled, params, fetch=True)
        return HotRows(rows, compiled.results)

    async def write(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> int:
        _, count = await self._retrying(self._path.compiled(statement), params, fetch=False)
        return count

    async def _retrying(
        self, compiled: _Compiled, params: Mapping[str, Any] | None, *, fetch: bool
    ) -> tuple[list[Any], int]:
        try:
            return await self._run(compiled, params, fetch=fetch)
        except psycopg.OperationalError:
            pass
        # The kept connection died (a server restart, an idle timeout): what the pool's
        # pre-ping would have caught. Hot statements stand alone and are safe to repeat,
        # so run it once more on a fresh connection; a second failure is reported.
        with contextlib.suppress(Exception):
            await self.connection.invalidate()
            await self.connection.close()
        fresh = await _PostgresHot.open(self._path)
        self.connection, self._driver = fresh.connection, fresh._driver
        return await self._run(compiled, params, fetch=fetch)

    async def _run(
        self, compiled: _Compiled, params: Mapping[str, Any] | None, *, fetch: bool
    ) -> tuple[list[Any], int]:
        self._path.observe(compiled.sql)
        async with self._driver.cursor() as cursor:
            await cursor.execute(compiled.sql, compiled.parameters(params or {}), prepare=True)
            return (await cursor.fetchall() if fetch else []), cursor.rowcount


Batch = Callable[["HotConnection", dict[Any, Any]], Awaitable[Mapping[Any, Any]]]


class _Coalescer:
    """Requests of one kind made at the same moment, run as one statement.

    Under load many agents poll and beat at once, and on PostgreSQL the client's share of
    a round trip (~75 µs of CPU in psycopg and asyncio) outweighs the statement itself. A
    request joins the batch being gathered; the batch is sent at the end of the current
    event-loop turn, or, when `MAX_IN_FLIGHT` batches are already out, as soon as one
    returns. A request never joins a batch already sent, so each one reaches the database
    after it was made: nothing is answered from a cache, and a change committed before a
    request arrives is always seen by it.
    """

    MAX_IN_FLIGHT = 2
    MAX_BATCH = 256

    def __init__(self, path: HotPath, run: Batch) -> None:
        self._path = path
        self._run_batch = run
        # key -> (the last payload given for it, everyone waiting on it)
        self._gathering: dict[Any, tuple[Any, list[asyncio.Future[Any]]]] = {}
        self._scheduled = False
        self._in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, key: Any, payload: Any) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (a server process has one; tests start several): whatever
            # the old one left gathering or scheduled died with it.
            self._loop, self._gathering, self._scheduled, self._in_flight = loop, {}, False, 0
        future: asyncio.Future[Any] = loop.create_future()
        entry = self._gathering.get(key)
        # The same key twice in one batch (an agent's two requests at once): one entry,
        # the later payload, every caller gets its result.
        self._gathering[key] = (payload, [*entry[1], future] if entry else [future])
        if not self._scheduled and self._in_flight < self.MAX_IN_FLIGHT:
            self._scheduled = True
            loop.call_soon(self._send)
        return await future

    def _send(self) -> None:
        self._scheduled = False
        if not self._gathering or self._in_flight >= self.MAX_IN_FLIGHT:
            return
        batch = self._gathering
        if len(batch) > self.MAX_BATCH:
            keys = list(batch)[: self.MAX_BATCH]
            batch = {key: self._gathering.pop(key) for key in keys}
        else:
            self._gathering = {}
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        task.add_done_callback(_ignore_result)
        if self._gathering:  # more than one batch's worth was waiting
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._send)

    async def _run(self, batch: dict[Any, tuple[Any, list[asyncio.Future[Any]]]]) -> None:
        try:
            async with self._path.connection() as hot:
                results = await self._run_batch(
                    hot, {key: payload for key, (payload, _) in batch.items()}
                )
            for key, (_, futures) in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(results.get(key))
        except asyncio.CancelledError:
            for _, futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:
            # One request's bad value must not fail the others it was batched with: each
            # is told to take the ordinary path, where it succeeds or fails on its own
            # (the failed statement changed nothing).
            log.warning("a coalesced hot-path statement failed", exc_info=exc)
            for _, futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(HotPathBusy("the batch it joined failed"))
        finally:
            self._in_flight -= 1
            if self._gathering and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._send)


def _ignore_result(task: asyncio.Task[None]) -> None:
    # Failures reach the waiting lookups; a cancelled batch has cancelled nobody else.
    if not task.cancelled():
        task.exception()


class _Lease:
    def __init__(self, path: HotPath) -> None:
        self._path = path
        self._postgres: _PostgresHot | None = None

    async def __aenter__(self) -> HotConnection:
        path = self._path
        if path.is_sqlite:
            return path.sqlite()
        self._postgres = await path._take()
        return self._postgres

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        hot = self._postgres
        if hot is None:
            return
        # A connection whose statement failed at the driver, or was cancelled while one may
        # still run on it, is closed rather than handed to the next request.
        if kind is not None and issubclass(kind, psycopg.OperationalError | asyncio.CancelledError):
            await self._path._discard(hot)
        else:
            await self._path._give_back(hot)


class HotPath:
    """Per process, per database (see the module doc)."""

    def __init__(
        self, url: str, engine: AsyncEngine, *, is_sqlite: bool, sqlite_file: bool
    ) -> None:
        self._url = url
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.dialect: Dialect = engine.dialect
        self._compiled: dict[ClauseElement, _Compiled] = {}
        self._coalescers: dict[Batch, _Coalescer] = {}
        # Called with the SQL of each statement run here (SQLAlchemy's events do not see
        # them); `Database.observe_statements` uses it.
        self.observers: list[Callable[[str], None]] = []
        self.is_sqlite = is_sqlite
        self._sqlite_file = sqlite_file
        self._sqlite: _SqliteHot | None = None
        self._idle: list[_PostgresHot] = []
        self._open = 0
        self._available = asyncio.Condition() if not is_sqlite else None

    async def coalesced(self, run: Batch, key: Any, payload: Any = None) -> Any:
        """`run(hot, {key: payload, ...})[key]`, run once for every request made with the
        same `run` at the same moment (see `_Coalescer`); None for a key it left out.
        `run` is a module-level function: it names the kind of request."""
        coalescer = self._coalescers.get(run)
        if coalescer is None:
            coalescer = self._coalescers[run] = _Coalescer(self, run)
        return await coalescer.submit(key, payload)

    def sqlite(self) -> _SqliteHot:
        if self._sqlite is None:
            if not self._sqlite_file:
                raise HotPathBusy("an in-memory database has no second connection")
            self._sqlite = _SqliteHot(self, self._url)
        return self._sqlite

    def compiled(self, statement: ClauseElement) -> _Compiled:
        entry = self._compiled.get(statement)
        if entry is None:
            if len(self._compiled) >= _MAX_COMPILED:
                self._compiled.clear()
            entry = self._compiled[statement] = _compile(statement, self.dialect)
        return entry

    def observe(self, sql: str) -> None:
        for observer in self.observers:
            observer(sql)

    def connection(self) -> _Lease:
        """`async with path.connection() as hot:` — the kept connection for a statement or
        two (a class, not a generator, to keep the hot path's per-request cost down)."""
        return _Lease(self)

    async def _take(self) -> _PostgresHot:
        assert self._available is not None
        async with self._available:
            while not self._idle and self._open >= POSTGRES_HOT_CONNECTIONS:
                await self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return await _PostgresHot.open(self)
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
