"""The object-store interface: the `BlobStore` protocol, its result types and its errors.

Every backend offers the same guarantees (docs/storage.md): a put is all-or-nothing (a
failed, cancelled or oversized put leaves no object and no partial object behind, and an
existing object under the key stays as it was), hashes while it writes, and never holds
the whole blob in memory; reads stream. Blocking work runs in worker threads so the event
loop never waits on a disk or a socket.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import anyio.to_thread

from byteor_cloud.core.errors import DependencyUnavailable, PayloadTooLarge

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 256 * 1024
"""Bytes per chunk that `open_stream` yields unless asked otherwise."""


class StorageError(Exception):
    """Base of every object-store failure."""


class StorageConfigError(StorageError, ValueError):
    """The storage URL or endpoint setting cannot be used; raised when the store is built."""


class InvalidBlobKey(StorageError, ValueError):
    """A key outside the key grammar, or one that would leave the store's root.

    Keys are made by the application, never taken from users, so this is a programming
    error (500), not a client error.
    """


class BlobNotFound(StorageError, LookupError):
    """No object under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object under key {key!r}")
        self.key = key


class BlobTooLarge(StorageError, PayloadTooLarge):
    """The blob went past `max_bytes`; for a put, nothing was kept (413)."""

    def __init__(self, key: str, *, limit_bytes: int) -> None:
        super().__init__(
            f"blob is larger than the limit of {limit_bytes} bytes",
            details={"limit_bytes": limit_bytes},
        )
        self.key = key
        self.limit_bytes = limit_bytes


class StorageUnavailable(StorageError, DependencyUnavailable):
    """The store cannot be used right now; `reason` says why in one line (503)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"object store unavailable: {reason}", details={"reason": reason})
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What a completed put stored."""

    key: str
    size: int
    sha256_hex: str


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What `stat` knows about a stored object."""

    key: str
    size: int


class BlobStream(AsyncIterator[bytes]):
    """An opened object, read chunk by chunk off the event loop.

    It closes its handle at the end of the data, on a read error, on `aclose()`, on leaving
    `async with`, or when garbage-collected; closing twice is harmless.
    """

    def __init__(
        self,
        *,
        key: str,
        size: int,
        read_chunk: Callable[[], bytes],
        close: Callable[[], None],
    ) -> None:
        self.key = key
        self.size = size
        self._read_chunk = read_chunk
        self._close_handle: Callable[[], None] | None = close

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._close_handle is None:
            raise StopAsyncIteration
        try:
            chunk = await anyio.to_thread.run_sync(self._read_chunk)
        except BaseException:
            self._close()
            raise
        if not chunk:
            self._close()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def __del__(self) -> None:
        self._close()

    def _close(self) -> None:
        close, self._close_handle = self._close_handle, None
        if close is not None:
            try:
                close()
            except Exception:  # closing a handle we no longer read must not mask anything
                logger.warning("closing the stream of %r failed", self.key, exc_info=True)


@runtime_checkable
class BlobStore(Protocol):
    """Where blobs live: compiled specs, deploy bundles, artifacts.

    Keys follow `byteor_cloud.storage.keys.validate_key`; every method validates them.
    """

    @property
    def location(self) -> str:
        """Where the store points, for logs and readiness reasons (no credentials)."""
        ...

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        """Store the chunks under the key, replacing any object there, all or nothing.

        Raises `BlobTooLarge` once the total passes `max_bytes`; an exception raised by
        the producer propagates unchanged. Either way nothing is kept.
        """
        ...

    async def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        """`put_stream` of bytes already in memory."""
        ...

    async def open_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BlobStream:
        """Open the object for streaming; raises `BlobNotFound` now, before any byte flows."""
        ...

    async def read_bytes(self, key: str, *, max_bytes: int) -> bytes:
        """The whole object, refused with `BlobTooLarge` when it is over `max_bytes`."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under the key."""
        ...

    async def stat(self, key: str) -> BlobInfo:
        """Size of the object; raises `BlobNotFound`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; returns how many were deleted.

        The prefix is a valid key followed by `/` (`keys.validate_prefix`), so `orgs/A/`
        never matches `orgs/AB/...`; anything else raises `InvalidBlobKey`. Idempotent (a
        second call returns 0); never touches the store's own reserved dot-files; never
        follows a link out of the root (local); streams the listing so memory stays
        bounded however many objects there are.
        """
        ...

    async def check_writable(self) -> None:
        """Write, read back and delete a probe object; raises `StorageUnavailable`."""
        ...

    async def sweep_incomplete_writes(self, *, older_than: timedelta) -> int:
        """Clear what crashed writes and probes left (never visible as objects); a count."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
