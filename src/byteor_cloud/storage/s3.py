"""The S3-compatible backend: objects under `s3://bucket/prefix`, through one boto3 client.

A put of up to one part (8 MiB by default) is a single PutObject, which S3 makes visible
only when complete. A larger one is a multipart upload whose parts are sent as they fill,
so memory stays at about one part; any failure, cancellation or overflow aborts the upload,
and S3 shows nothing until CompleteMultipartUpload. Reads stream the response body.
A prefix delete lists a page of at most 1000 keys at a time and deletes each page with one
DeleteObjects call, so memory stays at one page.

boto3 clients are thread-safe; every call runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import secrets
from collections.abc import AsyncIterable, Callable, Iterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from byteor_cloud.storage._common import (
    check_chunk_size,
    check_max_bytes,
    coalesce,
    read_all,
    single_chunk,
)
from byteor_cloud.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    BlobStream,
    InvalidBlobKey,
    StorageError,
    StorageUnavailable,
    StoredBlob,
)
from byteor_cloud.storage.keys import PROBE_DIR, new_probe_key, validate_key, validate_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import (
        CompletedPartTypeDef,
        ListObjectsV2OutputTypeDef,
        ObjectIdentifierTypeDef,
    )

logger = logging.getLogger(__name__)

T = TypeVar("T")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
DEFAULT_PART_SIZE = 8 * 1024 * 1024
DELETE_BATCH_SIZE = 1000  # S3's limit for both a ListObjectsV2 page and a DeleteObjects call
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
)
_THROTTLE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"})


def make_s3_client(endpoint_url: str | None) -> S3Client:
    """A client for AWS S3 or, with `endpoint_url`, an S3-compatible server.

    Credentials and region come from boto3's usual chain (AWS_* variables, profiles,
    instance roles), resolved now.
    """
    import boto3  # deferred: only S3 deployments pay for importing boto3

    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        # One connection per worker thread anyio may run at once (its default limit is 40).
        max_pool_connections=40,
        # Path-style URLs work on every S3-compatible server; AWS itself picks its own style.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # Our own SHA-256 covers integrity; the newer default checksums break some
        # S3-compatible servers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


class S3BlobStore:
    """Objects under `prefix/` in `bucket`; the bucket must exist."""

    def __init__(
        self,
        client: S3Client,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._endpoint_url = endpoint_url
        self._part_size = part_size

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def location(self) -> str:
        return f"s3://{self._bucket}/{self._prefix}"

    def object_key(self, key: str) -> str:
        """The S3 object key that holds a blob key."""
        return f"{self._prefix}/{key}" if self._prefix else key

    # -- public interface ---------------------------------------------------------------

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        validate_key(key)
        check_max_bytes(max_bytes)
        upload = _Upload(self, key, content_type or _DEFAULT_CONTENT_TYPE)
        try:
            blocks = coalesce(chunks, key=key, block_size=self._part_size, max_bytes=max_bytes)
            async with aclosing(blocks):
                first: bytes | None = None
                async for block in blocks:
                    if upload.upload_id is None:
                        if first is None:  # hold it: a one-part blob needs no multipart
                            first = block
                            continue
                        await self._run(upload.start, key=key)
                        await self._run(functools.partial(upload.send_part, first), key=key)
                        first = None
                    await self._run(functools.partial(upload.send_part, block), key=key)
            if upload.upload_id is None:
                await self._run(functools.partial(upload.put_whole, first or b""), key=key)
            else:
                await self._run(upload.complete, key=key)
        except BaseException:
            if upload.upload_id is not None:
                with anyio.CancelScope(shield=True):  # a cancelled put must still abort
                    await anyio.to_thread.run_sync(upload.abort)
            raise
        return StoredBlob(key=key, size=upload.size, sha256_hex=upload.hasher.hexdigest())

    async def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        return await self.put_stream(
            key, single_chunk(data), max_bytes=max_bytes, content_type=content_type
        )

    async def open_stream(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BlobStream:
        validate_key(key)
        check_chunk_size(chunk_size)
        return await self._open(key, chunk_size)

    async def read_bytes(self, key: str, *, max_bytes: int) -> bytes:
        validate_key(key)
        return await read_all(lambda: self.open_stream(key), key=key, max_bytes=max_bytes)

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except BlobNotFound:
            return False
        return True

    async def stat(self, key: str) -> BlobInfo:
        validate_key(key)
        head = functools.partial(
            self._client.head_object, Bucket=self._bucket, Key=self.object_key(key)
        )
        response = await self._run(head, key=key)
        return BlobInfo(key=key, size=response["ContentLength"])

    async def delete(self, key: str) -> None:
        validate_key(key)
        await self._delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix)
        listing = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket,
            Prefix=self.object_key(prefix),
            PaginationConfig={"PageSize": DELETE_BATCH_SIZE},
        )
        # One page per worker-thread hop: cancellable between pages, one page in memory.
        pages: Iterator[ListObjectsV2OutputTypeDef] = iter(listing)
        removed = 0
        while (page := await self._run(functools.partial(next, pages, None), key=None)) is not None:
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": item["Key"]}
                for item in page.get("Contents", [])
                if self._holds_blob(item["Key"])
            ]
            if batch:
                removed += await self._run(functools.partial(self._delete_batch, batch), key=None)
        return removed

    async def check_writable(self) -> None:
        key = new_probe_key()
        payload = secrets.token_bytes(32)
        try:
            put = functools.partial(
                self._client.put_object,
                Bucket=self._bucket,
                Key=self.object_key(key),
                Body=payload,
            )
            await self._run(put, key=key)
            async with await self._open(key, 1024) as stream:
                read_back = b"".join([chunk async for chunk in stream])
            await self._delete(key)
        except StorageError as exc:
            reason = exc.reason if isinstance(exc, StorageUnavailable) else str(exc)
            raise StorageUnavailable(f"{self.location}: {reason}") from exc
        if read_back != payload:
            raise StorageUnavailable(f"{self.location}: the probe object read back differently")

    async def sweep_incomplete_writes(self, *, older_than: timedelta) -> int:
        cutoff = datetime.now(UTC) - older_than
        return await self._run(functools.partial(self._sweep, cutoff), key=None)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._client.close)

    # -- internals ------------------------------------------------------------------------

    async def _run(self, call: Callable[[], T], *, key: str | None) -> T:
        """Run one blocking boto3 call in a worker thread, its errors made ours."""
        try:
            return await anyio.to_thread.run_sync(call)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, key=key) from exc

    async def _open(self, key: str, chunk_size: int) -> BlobStream:
        get = functools.partial(
            self._client.get_object, Bucket=self._bucket, Key=self.object_key(key)
        )
        response = await self._run(get, key=key)
        body = response["Body"]

        def read_chunk() -> bytes:
            try:
                return body.read(chunk_size)
            except (ClientError, BotoCoreError) as exc:
                raise self._translate(exc, key=key) from exc

        return BlobStream(
            key=key, size=response["ContentLength"], read_chunk=read_chunk, close=body.close
        )

    async def _delete(self, key: str) -> None:
        delete = functools.partial(
            self._client.delete_object, Bucket=self._bucket, Key=self.object_key(key)
        )
        # S3 itself answers 204 for a missing key; some compatible servers say NoSuchKey.
        with contextlib.suppress(BlobNotFound):
            await self._run(delete, key=key)

    def _holds_blob(self, object_key: str) -> bool:
        """Whether the S3 object under our prefix is a blob (its key in the grammar), not a
        reserved dot-name or something another tool wrote."""
        key = object_key.removeprefix(f"{self._prefix}/") if self._prefix else object_key
        try:
            validate_key(key)
        except InvalidBlobKey:
            return False
        return True

    def _delete_batch(self, batch: list[ObjectIdentifierTypeDef]) -> int:
        """Delete up to 1000 objects in one call; how many went. Raises ClientError (for
        `_run` to translate) if S3 refused any but already-missing ones."""
        response = self._client.delete_objects(
            Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = response.get("Errors", [])
        refused = [error for error in errors if error.get("Code") not in _MISSING_KEY_CODES]
        if refused:
            first = refused[0]
            message = (
                f"{len(refused)} of {len(batch)} objects not deleted; "
                f"{first.get('Key', '?')!r}: {first.get('Message', '')}"
            )
            raise ClientError(
                {"Error": {"Code": first.get("Code", "unknown"), "Message": message}},
                "DeleteObjects",
            )
        return len(batch) - len(errors)

    def _sweep(self, cutoff: datetime) -> int:
        removed = 0
        prefix = f"{self._prefix}/" if self._prefix else ""
        uploads = self._client.get_paginator("list_multipart_uploads")
        for page in uploads.paginate(Bucket=self._bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        objects = self._client.get_paginator("list_objects_v2")
        for listing in objects.paginate(Bucket=self._bucket, Prefix=f"{prefix}{PROBE_DIR}/"):
            for item in listing.get("Contents", []):
                if item["LastModified"] < cutoff:
                    self._client.delete_object(Bucket=self._bucket, Key=item["Key"])
                    removed += 1
        return removed

    def _translate(self, exc: Exception, *, key: str | None) -> StorageError:
        """Map a botocore failure to our errors; reasons name no credentials."""
        if isinstance(exc, ClientError):
            error: dict[str, Any] = dict(exc.response.get("Error", {}))
            code = str(error.get("Code", "unknown"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if key is not None and code in _MISSING_KEY_CODES:
                return BlobNotFound(key)
            if code == "NoSuchBucket":
                return StorageUnavailable(f"bucket {self._bucket!r} does not exist")
            if code in _DENIED_CODES or status == 403:
                return StorageUnavailable(
                    f"access to bucket {self._bucket!r} denied ({code}); check the AWS credentials"
                )
            if status >= 500 or code in _THROTTLE_CODES:
                return StorageUnavailable(f"the S3 service answered {code} (HTTP {status})")
            return StorageError(f"S3 refused the request: {code}: {error.get('Message', '')}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return StorageUnavailable(
                "no usable AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or another source boto3 reads)"
            )
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            where = self._endpoint_url or "the AWS S3 endpoint"
            return StorageUnavailable(f"cannot reach {where}: {exc.__class__.__name__}")
        return StorageError(f"S3 client error: {exc}")


class _Upload:
    """One put's S3 calls, hashed in order; every method runs in a worker thread."""

    def __init__(self, store: S3BlobStore, key: str, content_type: str) -> None:
        self._client = store._client
        self._bucket = store.bucket
        self._object_key = store.object_key(key)
        self._content_type = content_type
        self.upload_id: str | None = None
        self.parts: list[CompletedPartTypeDef] = []
        self.hasher = hashlib.sha256()
        self.size = 0

    def _hash(self, data: bytes) -> None:
        self.hasher.update(data)
        self.size += len(data)

    def put_whole(self, data: bytes) -> None:
        self._hash(data)
        self._client.put_object(
            Bucket=self._bucket, Key=self._object_key, Body=data, ContentType=self._content_type
        )

    def start(self) -> None:
        response = self._client.create_multipart_upload(
            Bucket=self._bucket, Key=self._object_key, ContentType=self._content_type
        )
        self.upload_id = response["UploadId"]

    def send_part(self, data: bytes) -> None:
        if self.upload_id is None:
            raise StorageError("multipart upload not started")
        self._hash(data)
        number = len(self.parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._object_key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
        )
        self.parts.append({"ETag": response["ETag"], "PartNumber": number})

    def complete(self) -> None:
        if self.upload_id is None:
            raise StorageError("multipart upload not started")
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._object_key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        if self.upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._object_key, UploadId=self.upload_id
            )
        except (ClientError, BotoCoreError):
            # The original failure matters more; the sweep aborts what is left.
            logger.warning(
                "aborting multipart upload of %r failed", self._object_key, exc_info=True
            )
