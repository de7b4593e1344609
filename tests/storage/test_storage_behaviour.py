"""The behaviour every BlobStore backend promises, run on the local and the S3 backend."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from byteor_cloud.storage import (
    MAX_KEY_LENGTH,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    InvalidBlobKey,
    StorageError,
    StoredBlob,
)

if TYPE_CHECKING:
    from .conftest import Harness

pytestmark = pytest.mark.anyio

KiB = 1024
MiB = 1024 * KiB


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await anyio.lowlevel.checkpoint()


async def failing_after(data: bytes, size: int) -> AsyncIterator[bytes]:
    async for chunk in chunked(data, size):
        yield chunk
    raise RuntimeError("producer broke")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_satisfies_the_blob_store_protocol(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)


async def test_put_bytes_then_read_bytes_round_trips(store: BlobStore) -> None:
    stored = await store.put_bytes("specs/abc.kv", b"hello world")

    assert stored == StoredBlob(key="specs/abc.kv", size=11, sha256_hex=sha256(b"hello world"))
    assert await store.read_bytes("specs/abc.kv", max_bytes=100) == b"hello world"
    assert await store.exists("specs/abc.kv")
    assert (await store.stat("specs/abc.kv")).size == 11


async def test_empty_blob_round_trips(store: BlobStore) -> None:
    stored = await store.put_bytes("empty", b"")

    assert (stored.size, stored.sha256_hex) == (0, sha256(b""))
    assert await store.read_bytes("empty", max_bytes=0) == b""


async def test_put_stream_hashes_what_it_wrote(harness: Harness) -> None:
    data = os.urandom(3 * MiB + 17)

    stored = await harness.store.put_stream(
        "artifacts/a.tar.gz", chunked(data, 100 * KiB), content_type="application/gzip"
    )

    assert stored.size == len(data)
    assert stored.sha256_hex == sha256(data)
    assert await harness.store.read_bytes("artifacts/a.tar.gz", max_bytes=len(data)) == data
    assert harness.leftovers() == ["artifacts/a.tar.gz"]


async def test_blob_larger_than_a_part_streams_in_and_out(harness: Harness) -> None:
    # Over two parts on S3 (a multipart upload) and two write blocks locally.
    data = os.urandom(2 * harness.part_size + 123 * KiB)

    stored = await harness.store.put_stream("big/blob", chunked(data, 256 * KiB))

    assert stored.sha256_hex == sha256(data)
    chunks = []
    async with await harness.store.open_stream("big/blob", chunk_size=64 * KiB) as stream:
        assert stream.size == len(data)
        chunks = [chunk async for chunk in stream]
    assert len(chunks) >= len(data) // (64 * KiB)
    assert all(0 < len(chunk) <= 64 * KiB for chunk in chunks)
    assert b"".join(chunks) == data
    assert harness.leftovers() == ["big/blob"]


async def test_a_put_holds_a_few_blocks_in_memory_never_the_blob(harness: Harness) -> None:
    blob_size = 64 * MiB  # the artifact cap

    async def fresh_chunks() -> AsyncIterator[bytes]:
        for _ in range(blob_size // (64 * KiB)):
            yield os.urandom(64 * KiB)

    tracemalloc.start()
    try:
        stored = await harness.store.put_stream("big", fresh_chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored.size == blob_size
    assert peak < 4 * harness.part_size + 4 * MiB < blob_size / 2


async def test_put_replaces_an_existing_object(store: BlobStore) -> None:
    await store.put_bytes("k", b"old")
    await store.put_bytes("k", b"new and longer")

    assert await store.read_bytes("k", max_bytes=100) == b"new and longer"


async def test_a_blob_of_exactly_max_bytes_is_accepted(store: BlobStore) -> None:
    stored = await store.put_stream("k", chunked(b"x" * 1000, 100), max_bytes=1000)

    assert stored.size == 1000


async def test_overflowing_max_bytes_raises_and_leaves_nothing(harness: Harness) -> None:
    # Past two parts, so on S3 the multipart upload has started and must be aborted.
    data = os.urandom(3 * harness.part_size)

    with pytest.raises(BlobTooLarge) as caught:
        await harness.store.put_stream("k", chunked(data, 512 * KiB), max_bytes=len(data) - 1)

    assert caught.value.limit_bytes == len(data) - 1
    assert not await harness.store.exists("k")
    assert harness.leftovers() == []


async def test_small_overflow_leaves_nothing(harness: Harness) -> None:
    with pytest.raises(BlobTooLarge):
        await harness.store.put_bytes("k", b"0123456789", max_bytes=9)

    assert harness.leftovers() == []


async def test_overflow_keeps_the_previous_object(harness: Harness) -> None:
    await harness.store.put_bytes("k", b"previous")

    with pytest.raises(BlobTooLarge):
        await harness.store.put_stream("k", chunked(b"y" * 5000, 1000), max_bytes=4000)

    assert await harness.store.read_bytes("k", max_bytes=100) == b"previous"
    assert harness.leftovers() == ["k"]


async def test_a_failing_producer_propagates_and_leaves_nothing(harness: Harness) -> None:
    data = os.urandom(2 * harness.part_size + 1)

    with pytest.raises(RuntimeError, match="producer broke"):
        await harness.store.put_stream("k", failing_after(data, 256 * KiB))

    assert not await harness.store.exists("k")
    assert harness.leftovers() == []


async def test_a_failing_producer_keeps_the_previous_object(harness: Harness) -> None:
    await harness.store.put_bytes("k", b"previous")

    with pytest.raises(RuntimeError):
        await harness.store.put_stream("k", failing_after(b"z" * 100, 10))

    assert await harness.store.read_bytes("k", max_bytes=100) == b"previous"
    assert harness.leftovers() == ["k"]


async def test_a_cancelled_put_leaves_nothing(harness: Harness) -> None:
    big_enough_to_start = os.urandom(2 * harness.part_size + 1)
    started = anyio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for chunk in chunked(big_enough_to_start, 512 * KiB):
            yield chunk
        started.set()
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(harness.store.put_stream, "k", stalls())
        await started.wait()
        await anyio.sleep(0.05)  # let the last block reach the backend
        tasks.cancel_scope.cancel()

    assert harness.leftovers() == []


async def test_concurrent_puts_of_one_key_end_with_one_complete_object(
    harness: Harness,
) -> None:
    payloads = [bytes([n]) * (harness.part_size + 4321 * (n + 1)) for n in range(5)]
    results: list[StoredBlob] = []

    async def put(payload: bytes) -> None:
        results.append(await harness.store.put_stream("shared", chunked(payload, 300 * KiB)))

    async with anyio.create_task_group() as tasks:
        for payload in payloads:
            tasks.start_soon(put, payload)

    final = await harness.store.read_bytes("shared", max_bytes=2 * harness.part_size)
    assert final in payloads
    assert sha256(final) in {result.sha256_hex for result in results}
    assert harness.leftovers() == ["shared"]


INVALID_KEYS = [
    pytest.param("../x", id="dotdot-first"),
    pytest.param("a/../../x", id="dotdot-inside"),
    pytest.param("/abs", id="absolute"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/./b", id="dot-segment"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("", id="empty"),
    pytest.param("a" * (MAX_KEY_LENGTH + 1), id="too-long"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a b", id="space"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("caf\u00e9", id="non-ascii"),
    pytest.param(".hidden", id="reserved-dot-prefix"),
]


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_invalid_keys_are_rejected_by_every_operation(harness: Harness, key: str) -> None:
    store = harness.store
    with pytest.raises(InvalidBlobKey):
        await store.put_bytes(key, b"x")
    with pytest.raises(InvalidBlobKey):
        await store.put_stream(key, chunked(b"x", 1))
    with pytest.raises(InvalidBlobKey):
        await store.open_stream(key)
    with pytest.raises(InvalidBlobKey):
        await store.read_bytes(key, max_bytes=10)
    with pytest.raises(InvalidBlobKey):
        await store.exists(key)
    with pytest.raises(InvalidBlobKey):
        await store.stat(key)
    with pytest.raises(InvalidBlobKey):
        await store.delete(key)
    assert harness.leftovers() == []


async def test_a_missing_key_is_blob_not_found(store: BlobStore) -> None:
    await store.put_bytes("present/one", b"x")

    for key in ("absent", "present/two", "no/such/folder/key"):
        with pytest.raises(BlobNotFound):
            await store.open_stream(key)
        with pytest.raises(BlobNotFound):
            await store.read_bytes(key, max_bytes=10)
        with pytest.raises(BlobNotFound):
            await store.stat(key)
        assert not await store.exists(key)


async def test_blob_not_found_is_a_storage_error(store: BlobStore) -> None:
    with pytest.raises(StorageError):
        await store.stat("absent")


async def test_delete_removes_and_is_idempotent(harness: Harness) -> None:
    await harness.store.put_bytes("a/b", b"x")

    await harness.store.delete("a/b")
    await harness.store.delete("a/b")
    await harness.store.delete("never/was")

    assert not await harness.store.exists("a/b")
    assert harness.leftovers() == []


async def test_read_bytes_refuses_an_object_over_its_limit(store: BlobStore) -> None:
    await store.put_bytes("k", b"x" * 101)

    with pytest.raises(BlobTooLarge):
        await store.read_bytes("k", max_bytes=100)


async def test_a_stream_closed_early_releases_and_the_store_goes_on(store: BlobStore) -> None:
    await store.put_bytes("k", os.urandom(256 * KiB))

    stream = await store.open_stream("k", chunk_size=16 * KiB)
    first = await stream.__anext__()
    await stream.aclose()

    assert len(first) == 16 * KiB
    assert [chunk async for chunk in stream] == []
    await store.delete("k")
    assert not await store.exists("k")


async def test_check_writable_succeeds_and_leaves_nothing(harness: Harness) -> None:
    await harness.store.check_writable()

    assert harness.leftovers() == []


async def test_sweep_keeps_objects(harness: Harness) -> None:
    await harness.store.put_bytes("keep/me", b"x")

    removed = await harness.store.sweep_incomplete_writes(older_than=timedelta(0))

    assert removed == 0
    assert harness.leftovers() == ["keep/me"]


# -- delete_prefix ------------------------------------------------------------------------

TENANT_KEYS = [
    "orgs/A/projects/p1/environments/e1/specs/s.kv",
    "orgs/A/projects/p1/environments/e2/bundle.tar.gz",
    "orgs/A/projects/p2/artifacts/x",
    "orgs/A/top",
]
NEIGHBOUR_KEYS = [
    "orgs/AB/projects/p1/environments/e1/specs/s.kv",
    "orgs/AB/top",
    "orgs/A.old/top",
    "orgs/B/projects/p1/x",
    "orgsA/top",
    "other/orgs/A/x",
]


async def put_all(store: BlobStore, keys: list[str], *, at_once: int = 32) -> None:
    limiter = anyio.CapacityLimiter(at_once)

    async def put(key: str) -> None:
        async with limiter:
            await store.put_bytes(key, key.encode())

    async with anyio.create_task_group() as tasks:
        for key in keys:
            tasks.start_soon(put, key)


async def test_delete_prefix_deletes_exactly_the_objects_under_it(harness: Harness) -> None:
    await put_all(harness.store, TENANT_KEYS + NEIGHBOUR_KEYS)

    removed = await harness.store.delete_prefix("orgs/A/")

    assert removed == len(TENANT_KEYS)
    assert harness.leftovers() == sorted(NEIGHBOUR_KEYS)
    for key in TENANT_KEYS:
        assert not await harness.store.exists(key)
    assert await harness.store.read_bytes("orgs/AB/top", max_bytes=100) == b"orgs/AB/top"


async def test_delete_prefix_is_idempotent(harness: Harness) -> None:
    await put_all(harness.store, TENANT_KEYS + NEIGHBOUR_KEYS)

    assert await harness.store.delete_prefix("orgs/A/") == len(TENANT_KEYS)
    assert await harness.store.delete_prefix("orgs/A/") == 0
    assert harness.leftovers() == sorted(NEIGHBOUR_KEYS)


async def test_delete_prefix_of_a_project_or_environment_keeps_the_rest(
    harness: Harness,
) -> None:
    await put_all(harness.store, TENANT_KEYS)

    assert await harness.store.delete_prefix("orgs/A/projects/p1/environments/e1/") == 1
    assert await harness.store.delete_prefix("orgs/A/projects/p1/") == 1
    assert harness.leftovers() == ["orgs/A/projects/p2/artifacts/x", "orgs/A/top"]


async def test_delete_prefix_with_nothing_under_it_returns_zero(harness: Harness) -> None:
    assert await harness.store.delete_prefix("orgs/A/") == 0  # not even a root yet, locally

    await harness.store.put_bytes("orgs/A/top", b"x")

    assert await harness.store.delete_prefix("orgs/Z/") == 0
    assert await harness.store.delete_prefix("orgs/A/top/") == 0  # an object, not a folder
    assert await harness.store.delete_prefix("orgs/A/t/") == 0
    assert harness.leftovers() == ["orgs/A/top"]


INVALID_PREFIXES = [
    "orgs/A",  # no trailing slash: would match orgs/AB/... too
    "",
    "/",
    "//",
    "/orgs/A/",
    "orgs//A/",
    "orgs/A//",
    "../",
    "orgs/../A/",
    "./",
    "orgs/./A/",
    ".byteor-probe/",
    "orgs/.byteor-tmp-x/",
    "orgs/A b/",
    "orgs\\A/",
    "a" * (MAX_KEY_LENGTH + 1) + "/",
]


async def test_delete_prefix_rejects_invalid_prefixes(harness: Harness) -> None:
    # One test looping, not one per prefix: each S3 store costs a client (the reasons
    # are checked one by one in test_storage_keys.py).
    await harness.store.put_bytes("orgs/A/top", b"x")

    for prefix in INVALID_PREFIXES:
        with pytest.raises(InvalidBlobKey):
            await harness.store.delete_prefix(prefix)

    assert harness.leftovers() == ["orgs/A/top"]


async def test_delete_prefix_goes_past_one_listing_page(harness: Harness) -> None:
    # Over 1000: more than one ListObjectsV2 page and DeleteObjects batch on S3.
    many = [f"orgs/A/projects/p{n % 3}/blobs/b{n:04d}" for n in range(1100)]
    await put_all(harness.store, [*many, "orgs/AB/top"])

    assert await harness.store.delete_prefix("orgs/A/") == len(many)
    assert await harness.store.delete_prefix("orgs/A/") == 0
    assert harness.leftovers() == ["orgs/AB/top"]
