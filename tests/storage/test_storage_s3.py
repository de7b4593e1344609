"""What only the S3 backend has: buckets, multipart uploads, endpoints."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from byteor_cloud.storage import StorageUnavailable
from byteor_cloud.storage.s3 import MIN_PART_SIZE, S3BlobStore

if TYPE_CHECKING:
    from .conftest import S3Harness, S3Stores

pytestmark = pytest.mark.anyio


async def parts_then_fail(parts: int) -> AsyncIterator[bytes]:
    for _ in range(parts):
        yield os.urandom(MIN_PART_SIZE)
        await anyio.lowlevel.checkpoint()
    raise RuntimeError("producer broke")


async def test_objects_live_under_the_prefix_with_their_content_type(
    s3_harness: S3Harness,
) -> None:
    await s3_harness.store.put_bytes("a/b.json", b"{}", content_type="application/json")

    head = s3_harness.admin.head_object(
        Bucket=s3_harness.server.bucket, Key=f"{s3_harness.prefix}/a/b.json"
    )
    assert head["ContentType"] == "application/json"
    assert head["ContentLength"] == 2


async def test_a_failure_after_parts_were_sent_aborts_the_upload(s3_harness: S3Harness) -> None:
    uploads_seen: list[int] = []

    async def watching() -> AsyncIterator[bytes]:
        async for chunk in parts_then_fail(3):
            yield chunk
            listing = s3_harness.admin.list_multipart_uploads(Bucket=s3_harness.server.bucket)
            uploads_seen.append(len(listing.get("Uploads", [])))

    with pytest.raises(RuntimeError):
        await s3_harness.store.put_stream("k", watching())

    assert max(uploads_seen) == 1  # the multipart upload had started …
    assert s3_harness.leftovers() == []  # … and was aborted


async def test_a_missing_bucket_makes_check_writable_fail_clearly(s3_stores: S3Stores) -> None:
    store = s3_stores.direct(bucket="no-such-bucket", prefix="p")

    with pytest.raises(StorageUnavailable) as caught:
        await store.check_writable()

    assert caught.value.reason == "s3://no-such-bucket/p: bucket 'no-such-bucket' does not exist"


async def test_an_unreachable_endpoint_makes_check_writable_fail_clearly(
    s3_stores: S3Stores,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
    store = s3_stores.direct(endpoint_url=nobody, prefix="p")

    with anyio.fail_after(30), pytest.raises(StorageUnavailable) as caught:
        await store.check_writable()

    assert (
        caught.value.reason == f"s3://byteor-test/p: cannot reach {nobody}: EndpointConnectionError"
    )


async def test_the_factory_builds_a_working_store(
    s3_harness: S3Harness, s3_stores: S3Stores
) -> None:
    bucket, prefix = s3_harness.server.bucket, s3_harness.prefix
    store = s3_stores.from_url(f"s3://{bucket}/{prefix}/")

    assert isinstance(store, S3BlobStore)
    assert store.location == f"s3://{bucket}/{prefix}"
    await store.put_bytes("via/factory", b"x")
    await store.check_writable()
    assert s3_harness.leftovers() == ["via/factory"]


async def test_sweep_aborts_stale_uploads_and_probes(s3_harness: S3Harness) -> None:
    bucket, prefix = s3_harness.server.bucket, s3_harness.prefix
    s3_harness.admin.create_multipart_upload(Bucket=bucket, Key=f"{prefix}/crashed")
    s3_harness.admin.put_object(Bucket=bucket, Key=f"{prefix}/.byteor-probe/left", Body=b"x")
    await s3_harness.store.put_bytes("kept", b"x")

    await s3_harness.store.sweep_incomplete_writes(older_than=timedelta(hours=1))
    # moto dates every multipart upload 2010-11-10, so only the probe can show "too fresh".
    assert ".byteor-probe/left" in s3_harness.leftovers()

    await s3_harness.store.sweep_incomplete_writes(older_than=timedelta(0))
    assert s3_harness.leftovers() == ["kept"]
