"""What only the S3 backend has: buckets, multipart uploads, endpoints."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from byteor_cloud.storage import StorageError, StorageUnavailable
from byteor_cloud.storage import s3 as s3_module
from byteor_cloud.storage.s3 import DELETE_BATCH_SIZE, MIN_PART_SIZE, S3BlobStore

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


async def test_delete_prefix_lists_and_deletes_in_bounded_batches(
    s3_harness: S3Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real size (1000, S3's limit for both calls) takes ~1100 objects to cross: the
    # behavioural suite does that; here a small batch shows the paging itself, cheaply.
    assert DELETE_BATCH_SIZE == 1000
    monkeypatch.setattr(s3_module, "DELETE_BATCH_SIZE", 10)
    page_sizes: list[int] = []
    batches: list[int] = []

    def on_list(params: dict[str, Any], **_: Any) -> None:
        page_sizes.append(params["MaxKeys"])

    def on_delete(params: dict[str, Any], **_: Any) -> None:
        batches.append(len(params["Delete"]["Objects"]))

    events = s3_harness.store._client.meta.events
    events.register("provide-client-params.s3.ListObjectsV2", on_list)
    events.register("provide-client-params.s3.DeleteObjects", on_delete)
    for n in range(25):
        await s3_harness.store.put_bytes(f"orgs/A/b{n:02d}", b"x")

    assert await s3_harness.store.delete_prefix("orgs/A/") == 25

    assert page_sizes == [10, 10, 10]
    assert batches == [10, 10, 5]
    assert s3_harness.leftovers() == []


async def test_delete_prefix_leaves_objects_outside_the_key_grammar(
    s3_harness: S3Harness,
) -> None:
    # S3 lets another tool write any name under our prefix; only blobs are ours to purge.
    bucket, prefix = s3_harness.server.bucket, s3_harness.prefix
    for name in ("orgs/A/.byteor-tmp-x", "orgs/A/sub/.hidden", "orgs/A/bad name"):
        s3_harness.admin.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=b"x")
    await s3_harness.store.put_bytes("orgs/A/sub/blob", b"x")

    assert await s3_harness.store.delete_prefix("orgs/A/") == 1
    assert s3_harness.leftovers() == [
        "orgs/A/.byteor-tmp-x",
        "orgs/A/bad name",
        "orgs/A/sub/.hidden",
    ]


async def test_delete_prefix_keeps_an_object_named_like_the_folder(
    s3_harness: S3Harness,
) -> None:
    # Unlike a directory, S3 can hold both `orgs/A` and `orgs/A/x`; only the second is
    # under the prefix `orgs/A/`.
    await s3_harness.store.put_bytes("orgs/A", b"x")
    await s3_harness.store.put_bytes("orgs/A/x", b"x")

    assert await s3_harness.store.delete_prefix("orgs/A/") == 1
    assert s3_harness.leftovers() == ["orgs/A"]


async def test_delete_prefix_reports_objects_s3_refused_to_delete(s3_harness: S3Harness) -> None:
    await s3_harness.store.put_bytes("orgs/A/x", b"x")
    await s3_harness.store.put_bytes("orgs/A/y", b"x")

    def refuse(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        key = f"{s3_harness.prefix}/orgs/A/x"
        error = {"Key": key, "Code": "AccessDenied", "Message": "Access Denied"}
        return AWSResponse("http://s3", 200, HTTPHeaders(), None), {"Errors": [error]}

    s3_harness.store._client.meta.events.register("before-call.s3.DeleteObjects", refuse)

    with pytest.raises(StorageUnavailable) as caught:
        await s3_harness.store.delete_prefix("orgs/A/")

    assert isinstance(caught.value, StorageError)
    assert "AccessDenied" in caught.value.reason
    assert s3_harness.leftovers() == ["orgs/A/x", "orgs/A/y"]  # the call never reached S3
