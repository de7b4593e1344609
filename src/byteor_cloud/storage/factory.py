"""Build the configured `BlobStore` from `BYTEOR_CLOUD_STORAGE_URL` and the S3 endpoint.

No I/O happens here beyond creating the S3 client; `check_writable` is the live check.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from byteor_cloud.storage.base import BlobStore, InvalidBlobKey, StorageConfigError
from byteor_cloud.storage.keys import validate_key
from byteor_cloud.storage.local import LocalBlobStore

_FILE_SCHEME = "file://"
_S3_SCHEME = "s3://"
# S3's bucket naming rules (3-63 lowercase letters, digits, dots and hyphens).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def open_blob_store(storage_url: str, *, s3_endpoint_url: str | None) -> BlobStore:
    """`file://<path>` → local directory; `s3://bucket[/prefix]` → S3 (the endpoint
    applies only there). Raises `StorageConfigError` (a ValueError) for anything else."""
    if storage_url.startswith(_FILE_SCHEME):
        return LocalBlobStore(_local_root(storage_url))
    if storage_url.startswith(_S3_SCHEME):
        bucket, prefix = _bucket_and_prefix(storage_url)
        endpoint = _endpoint(s3_endpoint_url)
        from byteor_cloud.storage.s3 import S3BlobStore, make_s3_client  # imports boto3

        client = make_s3_client(endpoint)
        return S3BlobStore(client, bucket=bucket, prefix=prefix, endpoint_url=endpoint)
    raise StorageConfigError("storage URL must be file://<path> or s3://<bucket>[/<prefix>]")


def _local_root(storage_url: str) -> str:
    # The rest is a path taken literally (no percent-decoding), as settings write it:
    # file:///abs/path, or file://relative/path against the working directory.
    path = storage_url.removeprefix(_FILE_SCHEME)
    if path.startswith("localhost/"):
        path = path.removeprefix("localhost")
    if not path or "\x00" in path:
        raise StorageConfigError(f"storage URL {storage_url!r} names no directory")
    return path


def _bucket_and_prefix(storage_url: str) -> tuple[str, str]:
    parts = urlsplit(storage_url)
    if parts.query or parts.fragment:
        raise StorageConfigError(f"storage URL {storage_url!r}: expected s3://bucket/prefix")
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket):
        raise StorageConfigError(f"storage URL {storage_url!r}: {bucket!r} is not a bucket name")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except InvalidBlobKey as exc:
            raise StorageConfigError(f"storage URL {storage_url!r}: bad prefix: {exc}") from exc
    return bucket, prefix


def _endpoint(s3_endpoint_url: str | None) -> str | None:
    if not s3_endpoint_url:
        return None
    parts = urlsplit(s3_endpoint_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise StorageConfigError(f"S3 endpoint {s3_endpoint_url!r} must be an http(s) URL")
    return s3_endpoint_url
