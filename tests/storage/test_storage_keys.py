"""The key grammar, checked in one place for every backend."""

from __future__ import annotations

import re

import pytest

from byteor_cloud.storage import (
    MAX_KEY_LENGTH,
    InvalidBlobKey,
    StorageError,
    validate_key,
    validate_prefix,
)
from byteor_cloud.storage.keys import PROBE_DIR, TEMP_PREFIX, is_key_segment, new_probe_key


@pytest.mark.parametrize(
    "key",
    [
        "k",
        "specs/0123abcd.kv",
        "orgs/o_1/projects/p-2/artifacts/sha256-ab.tar.gz",
        "a..b",
        "trailing.",
        "-dash_under",
        "/".join(["a"] * 256),
        "a" * 255,
        "a/" * 200 + "b" * (MAX_KEY_LENGTH - 400),
    ],
)
def test_valid_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("../x", "'..' segment"),
        ("a/../../x", "'..' segment"),
        ("a/./b", "'.' segment"),
        ("/abs", "absolute"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a" * (MAX_KEY_LENGTH + 1), "longer than 512"),
        ("a" * 256, "segment over 255"),
        (".git/config", "starting with '.'"),
        (f"{TEMP_PREFIX}abc", "starting with '.'"),
        (f"{PROBE_DIR}/x", "starting with '.'"),
        ("a\\b", "outside [A-Za-z0-9._-]"),
        ("a\nb", "outside [A-Za-z0-9._-]"),
        ("k\n", "outside [A-Za-z0-9._-]"),
        ("a:b", "outside [A-Za-z0-9._-]"),
        ("\u0430", "outside [A-Za-z0-9._-]"),
        ("ａ", "outside [A-Za-z0-9._-]"),
    ],
)
def test_invalid_keys_are_refused_with_the_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidBlobKey, match=re.escape(reason)) as caught:
        validate_key(key)

    assert isinstance(caught.value, StorageError)
    assert isinstance(caught.value, ValueError)


def test_a_non_string_key_is_refused() -> None:
    with pytest.raises(InvalidBlobKey, match="must be a string"):
        validate_key(b"bytes")


def test_probe_keys_live_in_the_reserved_folder_and_differ() -> None:
    first, second = new_probe_key(), new_probe_key()

    assert first.startswith(f"{PROBE_DIR}/")
    assert first != second
    with pytest.raises(InvalidBlobKey):
        validate_key(first)


@pytest.mark.parametrize(
    "prefix",
    [
        "orgs/",
        "orgs/o_1/",
        "orgs/o_1/projects/p-2/environments/e.3/",
        "a" * 255 + "/" + "b" * 255 + "/",
    ],
)
def test_valid_prefixes_pass_unchanged(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("", "empty: it would name the whole store"),
        ("/", "empty: it would name the whole store"),
        ("orgs/A", "does not end with '/'"),
        ("orgs/A/x.kv", "does not end with '/'"),
        ("//", "absolute"),
        ("/orgs/", "absolute"),
        ("orgs//A/", "empty segment"),
        ("orgs/A//", "empty segment"),
        ("../", "'..' segment"),
        ("orgs/../", "'..' segment"),
        ("./", "'.' segment"),
        (f"{PROBE_DIR}/", "starting with '.'"),
        ("orgs/A b/", "outside [A-Za-z0-9._-]"),
        ("a" * (MAX_KEY_LENGTH + 1) + "/", "longer than 512"),
    ],
)
def test_invalid_prefixes_are_refused_with_the_reason(prefix: str, reason: str) -> None:
    with pytest.raises(InvalidBlobKey, match=re.escape(reason)) as caught:
        validate_prefix(prefix)

    assert str(caught.value).startswith("blob key prefix")


def test_a_non_string_prefix_is_refused() -> None:
    with pytest.raises(InvalidBlobKey, match="must be a string"):
        validate_prefix(b"orgs/")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("k", True), ("a.b-c_d", True), (".byteor-tmp-x", False), ("..", False), ("a b", False)],
)
def test_key_segments(name: str, expected: bool) -> None:
    assert is_key_segment(name) is expected
