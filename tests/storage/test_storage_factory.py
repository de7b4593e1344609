"""`open_blob_store`: from the storage URL setting to a backend, or one clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from byteor_cloud.storage import LocalBlobStore, StorageConfigError, open_blob_store


def test_a_file_url_with_an_absolute_path_opens_that_directory(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/objects", s3_endpoint_url=None)

    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "objects"
    assert store.location == f"file://{tmp_path}/objects"


def test_a_file_url_path_is_taken_literally(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}/with space/100%", s3_endpoint_url=None)

    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "with space" / "100%"


def test_a_relative_file_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    store = open_blob_store("file://./.byteor-cloud/objects", s3_endpoint_url=None)

    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / ".byteor-cloud" / "objects"


def test_file_url_with_localhost_host(tmp_path: Path) -> None:
    store = open_blob_store(f"file://localhost{tmp_path}", s3_endpoint_url="http://ignored:9000")

    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path


@pytest.mark.parametrize(
    ("url", "endpoint", "message"),
    [
        ("/var/lib/objects", None, "must be file://<path> or s3://"),
        ("gs://bucket/x", None, "must be file://<path> or s3://"),
        ("file://", None, "names no directory"),
        ("s3://", None, "is not a bucket name"),
        ("s3://Upper/x", None, "is not a bucket name"),
        ("s3://ab/x", None, "is not a bucket name"),
        ("s3://user@bucket/x", None, "is not a bucket name"),
        ("s3://bucket/../x", None, "bad prefix"),
        ("s3://bucket/a//b", None, "bad prefix"),
        ("s3://bucket/x?versioning=1", None, "expected s3://bucket/prefix"),
        ("s3://bucket/x", "localhost:9000", "must be an http(s) URL"),
        ("s3://bucket/x", "ftp://host", "must be an http(s) URL"),
    ],
)
def test_unusable_settings_are_refused_clearly(
    url: str, endpoint: str | None, message: str
) -> None:
    with pytest.raises(StorageConfigError, match=re.escape(message)) as caught:
        open_blob_store(url, s3_endpoint_url=endpoint)

    assert isinstance(caught.value, ValueError)  # so a settings validator reports it
