"""Fixtures for the object-store tests: both backends behind one harness.

The S3 backend runs against a real S3-compatible server: moto's server mode, started once
per session as a subprocess on a free loopback port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import boto3
import pytest

from byteor_cloud.storage import BlobStore, LocalBlobStore, open_blob_store
from byteor_cloud.storage.s3 import MIN_PART_SIZE, S3BlobStore, make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

DUMMY_KEY_ID = "testing"
DUMMY_SECRET = "testing"
REGION = "us-east-1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the S3-compatible server -----------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str

    def admin_client(self) -> S3Client:
        """A client with explicit dummy credentials, for the tests' own inspections."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET,
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"moto server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (our loopback http URL)
                return
        except urllib.error.HTTPError:
            return  # it answered, which is all we wait for
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"moto server did not answer within 30 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    log = tmp_path_factory.mktemp("moto") / "server.log"
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_answering(f"{endpoint}/moto-api/", process, log)
        server = S3Server(endpoint_url=endpoint, bucket="byteor-test")
        server.admin_client().create_bucket(Bucket=server.bucket)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def dummy_aws_environment() -> Iterator[None]:
    """Dummy credentials in the environment only while a client is built (boto3 resolves
    them then), so nothing real is used and nothing leaks into other tests."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                patch.delenv(name)
        patch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
        patch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


def make_s3_store(
    server: S3Server, *, prefix: str, bucket: str | None = None, endpoint_url: str | None = None
) -> S3BlobStore:
    """An S3 store with the smallest legal part size, so multipart paths run on small blobs."""
    endpoint_url = endpoint_url or server.endpoint_url
    with dummy_aws_environment():
        client = make_s3_client(endpoint_url)
    return S3BlobStore(
        client,
        bucket=bucket or server.bucket,
        prefix=prefix,
        endpoint_url=endpoint_url,
        part_size=MIN_PART_SIZE,
    )


class S3Stores:
    """Builds extra S3 stores for a test and closes them afterwards."""

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self._made: list[BlobStore] = []

    def direct(
        self, *, prefix: str, bucket: str | None = None, endpoint_url: str | None = None
    ) -> S3BlobStore:
        store = make_s3_store(self.server, prefix=prefix, bucket=bucket, endpoint_url=endpoint_url)
        self._made.append(store)
        return store

    def from_url(self, storage_url: str) -> BlobStore:
        """Through the public factory, as the application builds it."""
        with dummy_aws_environment():
            store = open_blob_store(storage_url, s3_endpoint_url=self.server.endpoint_url)
        self._made.append(store)
        return store

    def close(self) -> None:
        for store in self._made:
            if isinstance(store, S3BlobStore):
                store._client.close()


@pytest.fixture
def s3_stores(s3_server: S3Server) -> Iterator[S3Stores]:
    stores = S3Stores(s3_server)
    yield stores
    stores.close()


# -- one harness per backend ------------------------------------------------------------


class Harness(Protocol):
    name: str
    store: BlobStore
    part_size: int

    def leftovers(self) -> list[str]:
        """Everything the backend holds for this test: objects, temporary files and
        unfinished uploads (so "nothing left behind" can be checked)."""
        ...


class LocalHarness:
    name = "local"
    part_size = 1024 * 1024

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store: LocalBlobStore = LocalBlobStore(root)

    def leftovers(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            str(path.relative_to(self.root)) for path in self.root.rglob("*") if not path.is_dir()
        )


class S3Harness:
    name = "s3"
    part_size = MIN_PART_SIZE

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.prefix = f"t-{uuid.uuid4().hex}"
        self.store: S3BlobStore = make_s3_store(server, prefix=self.prefix)
        self.admin = server.admin_client()

    def leftovers(self) -> list[str]:
        bucket, prefix = self.server.bucket, f"{self.prefix}/"
        listing = self.admin.list_objects_v2(Bucket=bucket, Prefix=prefix)
        objects = [item["Key"].removeprefix(prefix) for item in listing.get("Contents", [])]
        uploads = self.admin.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        pending = [
            f"upload:{item['Key'].removeprefix(prefix)}" for item in uploads.get("Uploads", [])
        ]
        return sorted(objects + pending)

    def close(self) -> None:
        self.store._client.close()
        self.admin.close()


@pytest.fixture
def local_harness(tmp_path: Path) -> LocalHarness:
    return LocalHarness(tmp_path / "objects")


@pytest.fixture
def s3_harness(s3_server: S3Server) -> Iterator[S3Harness]:
    harness = S3Harness(s3_server)
    yield harness
    harness.close()


@pytest.fixture(params=["local", "s3"])
def harness(request: pytest.FixtureRequest) -> Harness:
    fixture: Harness = request.getfixturevalue(f"{request.param}_harness")
    return fixture


@pytest.fixture
def store(harness: Harness) -> BlobStore:
    return harness.store
