"""The database handle and its transactions: who owns a commit, and how it begins.

Services flush and never commit. The request, the job attempt or the CLI command opens
one transaction with `Database.transaction()`, and it commits when the block ends
without an exception and rolls back otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from byteor_cloud.db.engine import (
    SQLITE_BEGIN_OPTION,
    SQLITE_NO_BEGIN,
    is_sqlite,
    is_sqlite_file,
    make_async_engine,
)
from byteor_cloud.db.hotpath import Batch, HotConnection, HotPath


class Database:
    """One engine per process and the session factories built on it."""

    def __init__(self, url: str, *, schema: str = "public") -> None:
        self.url = url
        self.schema = schema
        self.is_sqlite = is_sqlite(url)
        self.engine: AsyncEngine = make_async_engine(url, schema=schema)
        # Readers on SQLite begin DEFERRED so they never queue behind the write lock.
        read_engine = self.engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reader = async_sessionmaker(read_engine, expire_on_commit=False)
        # Single-statement reads need no transaction: each statement is its own consistent
        # snapshot. Skipping BEGIN/ROLLBACK saves round trips (thread hops on aiosqlite).
        self._hot = HotPath(
            url, self.engine, is_sqlite=self.is_sqlite, sqlite_file=is_sqlite_file(url)
        )
        self._autocommit = (
            self.engine.execution_options(**{SQLITE_BEGIN_OPTION: SQLITE_NO_BEGIN})
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        factory = self._reader if readonly else self._writer
        async with factory() as session:
            try:
                yield session
                # A read-only transaction is simply closed: the connection goes back to the
                # pool rolled back, and loaded objects stay readable (no expiry).
                if not readonly:
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def autocommit_reader(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection outside any transaction, for hot paths made of statements that
        each stand alone: a read sees one consistent snapshot, a write (a single UPDATE)
        commits by itself. Anything needing several statements to agree uses
        `transaction()`."""
        async with self._autocommit.connect() as connection:
            yield connection

    def hot(self) -> AbstractAsyncContextManager[HotConnection]:
        """`async with database.hot() as hot:` a kept connection for the agent hot path's
        single statements (`db.hotpath`); raises `HotPathBusy` when the statement would
        have to wait: use the pooled path."""
        return self._hot.connection()

    async def coalesced(self, run: Batch, key: Any, payload: Any = None) -> Any:
        """The hot path's coalesced requests (`HotPath.coalesced`; for PostgreSQL)."""
        return await self._hot.coalesced(run, key, payload)

    @contextmanager
    def observe_statements(self, callback: Callable[[str], None]) -> Iterator[None]:
        """Call `callback` with the SQL of every statement this handle runs meanwhile,
        on every engine and on the hot path's driver connections (tests count writes)."""
        engines = [self.engine.sync_engine]

        def listener(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            callback(statement)

        for engine in engines:
            event.listen(engine, "before_cursor_execute", listener)
        self._hot.observers.append(callback)
        try:
            yield
        finally:
            self._hot.observers.remove(callback)
            for engine in engines:
                event.remove(engine, "before_cursor_execute", listener)

    async def dispose(self) -> None:
        await self._hot.close()
        await self.engine.dispose()
