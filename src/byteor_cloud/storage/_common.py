"""Pieces every backend shares: chunk coalescing with the size cap, and the bytes helpers."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable

from byteor_cloud.storage.base import BlobStream, BlobTooLarge, StorageError


def check_max_bytes(max_bytes: int | None) -> None:
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must be zero or more")


def check_chunk_size(chunk_size: int) -> None:
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")


async def coalesce(
    chunks: AsyncIterable[bytes], *, key: str, block_size: int, max_bytes: int | None
) -> AsyncGenerator[bytes, None]:
    """Regroup the producer's chunks into blocks of at least `block_size` (the last may be
    shorter), raising `BlobTooLarge` as soon as the total passes `max_bytes`.

    Small chunks are batched so a backend pays one thread hop or one request per block,
    while memory stays bounded by one block whatever the blob's size.
    """
    buffer = bytearray()
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise BlobTooLarge(key, limit_bytes=max_bytes)
        if not buffer and len(chunk) >= block_size:
            yield bytes(chunk)  # already big enough: pass it on without a copy into the buffer
            continue
        buffer += chunk
        if len(buffer) >= block_size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


async def single_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read_all(
    open_stream: Callable[[], Awaitable[BlobStream]], *, key: str, max_bytes: int
) -> bytes:
    """Collect an object, refusing it before reading when its size is over `max_bytes`."""
    check_max_bytes(max_bytes)
    async with await open_stream() as stream:
        if stream.size > max_bytes:
            raise BlobTooLarge(key, limit_bytes=max_bytes)
        data = bytearray()
        async for chunk in stream:
            data += chunk
            if len(data) > max_bytes:  # the object changed size under us
                raise BlobTooLarge(key, limit_bytes=max_bytes)
    if len(data) != stream.size:
        raise StorageError(f"object {key!r} ended after {len(data)} of {stream.size} bytes")
    return bytes(data)
