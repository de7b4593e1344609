"""Object store: one `BlobStore` interface, a local-directory backend and an S3 backend.

`open_blob_store(settings.effective_storage_url, s3_endpoint_url=settings.s3_endpoint_url)`
builds the configured one; docs/storage.md states the guarantees.
"""

from byteor_cloud.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    BlobStream,
    BlobTooLarge,
    InvalidBlobKey,
    StorageConfigError,
    StorageError,
    StorageUnavailable,
    StoredBlob,
)
from byteor_cloud.storage.factory import open_blob_store
from byteor_cloud.storage.keys import MAX_KEY_LENGTH, validate_key, validate_prefix
from byteor_cloud.storage.local import LocalBlobStore

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_KEY_LENGTH",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobStream",
    "BlobTooLarge",
    "InvalidBlobKey",
    "LocalBlobStore",
    "StorageConfigError",
    "StorageError",
    "StorageUnavailable",
    "StoredBlob",
    "open_blob_store",
    "validate_key",
    "validate_prefix",
]
