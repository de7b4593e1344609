"""Opening deploy bundles as an agent does (PRODUCT.md §9): a good bundle is accepted,
and every unsafe, oversized, tampered or untrusted one is refused with its stable code."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from byteor_cloud.core.canonical_json import canonical_json
from byteor_cloud.deploybundle import format as fmt
from byteor_cloud.deploybundle.build import BundleInputs, build_bundle
from byteor_cloud.deploybundle.errors import BundleError
from byteor_cloud.deploybundle.verify import DEFAULT_MAX_BYTES, VerifiedBundle, open_bundle
from byteor_cloud.signing import keys

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KID = "key_01"
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
STRANGER_KID = "key_99"


def key_entry(private: Ed25519PrivateKey, kid: str, **fields: Any) -> dict[str, Any]:
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    entry = {
        "kid": kid,
        "alg": "Ed25519",
        "public_key": keys.b64url(public),
        "status": "active",
        "not_after": None,
    }
    return {**entry, **fields}


TRUSTED = [key_entry(KEY, KID)]
SPEC_KV = b"spec.v=1\nname=orders\n"
INPUTS = BundleInputs(
    org_id="org_01",
    project_id="prj_01",
    environment_id="env_01",
    deployment_id="dep_01",
    version_id="ver_01",
    spec_hash=fmt.sha256_digest(SPEC_KV),
    bundle_hash="sha256:" + "ab" * 32,
    spec_kv=SPEC_KV,
    runtime_config={"profile": "low-latency", "wait": "backoff"},
    secret_refs={"DB_PASSWORD": "env:DB_PASSWORD"},
    signing_keys_document={"keys": TRUSTED},
    approval_credential="eyJ2IjoxfQ.c2ln",
)
GOOD = build_bundle(INPUTS, sign=lambda payload: (KID, KEY.sign(payload))).data


def open_(data: bytes, **options: Any) -> VerifiedBundle:
    options.setdefault("trusted_keys", TRUSTED)
    options.setdefault("now", NOW)
    return open_bundle(data, **options)


def refusal(data: bytes, **options: Any) -> str:
    with pytest.raises(BundleError) as refused:
        open_(data, **options)
    return refused.value.code


def unpack(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        files = {}
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            assert extracted is not None
            files[member.name] = extracted.read()
        return files


def regular(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, b""


def pack(
    members: list[tuple[tarfile.TarInfo, bytes]], tar_format: int = tarfile.USTAR_FORMAT
) -> bytes:
    """A tar.gz made with the standard library, however odd its members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return gzip.compress(buffer.getvalue(), mtime=0)


def repack(files: dict[str, bytes]) -> bytes:
    return pack([regular(name, content) for name, content in files.items()])


def resigned(
    files: dict[str, bytes],
    manifest: bytes,
    private: Ed25519PrivateKey = KEY,
    kid: str = KID,
) -> bytes:
    signature = canonical_json({"kid": kid, "sig": keys.b64url(private.sign(manifest))})
    return repack({**files, "manifest.json": manifest, "manifest.sig": signature})


def good_files() -> dict[str, bytes]:
    return unpack(GOOD)


def good_manifest() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(good_files()["manifest.json"])
    return parsed


# --- accepted --------------------------------------------------------------------------


def test_a_good_bundle_is_opened_with_everything_verified() -> None:
    bundle = open_(GOOD)
    assert bundle.kid == KID
    assert bundle.manifest == good_manifest()
    assert bundle.manifest["deployment_id"] == "dep_01"
    assert bundle.spec_kv == SPEC_KV
    assert bundle.runtime_config == {"profile": "low-latency", "wait": "backoff"}
    assert bundle.secret_refs == {"DB_PASSWORD": "env:DB_PASSWORD"}
    assert bundle.signing_keys == {"keys": TRUSTED}
    assert bundle.approval_credential == "eyJ2IjoxfQ.c2ln"
    assert sorted(bundle.files) == sorted(bundle.manifest["files"])


def test_a_bundle_without_a_credential_returns_none() -> None:
    data = build_bundle(
        replace(INPUTS, approval_credential=None), sign=lambda p: (KID, KEY.sign(p))
    ).data
    bundle = open_(data)
    assert bundle.approval_credential is None
    assert "approval.cred" not in bundle.files


def test_a_retiring_key_verifies_until_its_not_after() -> None:
    retiring = [key_entry(KEY, KID, status="retiring", not_after="2026-12-06T12:00:00Z")]
    assert open_(GOOD, trusted_keys=retiring).kid == KID
    assert refusal(GOOD, trusted_keys=retiring, now=datetime(2026, 12, 7, tzinfo=UTC)) == (
        "unknown_key"
    )


def test_a_reordered_archive_with_other_metadata_is_still_accepted() -> None:
    # Order, mode, owners and times mean nothing in memory; the signature covers content.
    files = good_files()
    members = []
    for name in sorted(files, reverse=True):
        info, content = regular(name, files[name])
        info.mode, info.uid, info.mtime, info.uname = 0o600, 1000, 1_700_000_000, "builder"
        members.append((info, content))
    assert open_(pack(members)).manifest == good_manifest()


# --- the signature ---------------------------------------------------------------------


def test_a_bundle_re_signed_with_an_untrusted_key_is_unknown_key() -> None:
    # The stranger ships its own key in signing_keys.json: keys from the bundle are
    # never trusted.
    stranger_document = {"keys": [key_entry(STRANGER, STRANGER_KID)]}
    forged = build_bundle(
        replace(INPUTS, signing_keys_document=stranger_document),
        sign=lambda payload: (STRANGER_KID, STRANGER.sign(payload)),
    ).data
    assert refusal(forged) == "unknown_key"
    assert open_(forged, trusted_keys=stranger_document["keys"]).kid == STRANGER_KID


def test_no_trusted_keys_trusts_nothing() -> None:
    assert refusal(GOOD, trusted_keys=[]) == "unknown_key"


@pytest.mark.parametrize(
    "entry",
    [
        key_entry(KEY, KID, status="retired"),
        key_entry(KEY, KID, status="revoked"),
        key_entry(KEY, KID, alg="RS256"),
        key_entry(KEY, KID, status="retiring", not_after="2026-12-05T11:59:59Z"),
        key_entry(KEY, KID, status="retiring", not_after="2026-12-06T12:00:00"),  # no zone
        key_entry(KEY, "key_02"),
    ],
    ids=["retired", "unknown-status", "other-alg", "past-not-after", "zone-less", "other-kid"],
)
def test_keys_that_may_not_verify_give_unknown_key(entry: dict[str, Any]) -> None:
    assert refusal(GOOD, trusted_keys=[entry]) == "unknown_key"


def test_a_flipped_signature_byte_is_bad_signature() -> None:
    files = good_files()
    signature = json.loads(files["manifest.sig"])
    raw = bytearray(keys.from_b64url(signature["sig"]))
    raw[10] ^= 0x01
    files["manifest.sig"] = canonical_json({**signature, "sig": keys.b64url(bytes(raw))})
    assert refusal(repack(files)) == "bad_signature"


def test_a_changed_manifest_under_the_old_signature_is_bad_signature() -> None:
    files = good_files()
    files["manifest.json"] = files["manifest.json"].replace(b"dep_01", b"dep_02")
    assert refusal(repack(files)) == "bad_signature"


def test_a_trusted_kid_with_a_stranger_signature_is_bad_signature() -> None:
    files = good_files()
    assert refusal(resigned(files, files["manifest.json"], STRANGER, KID)) == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    [b"not json", b'{"kid":"key_01"}', b'{"kid":"","sig":"x"}', b'["key_01","x"]'],
)
def test_an_unreadable_signature_file_is_malformed(signature: bytes) -> None:
    files = {**good_files(), "manifest.sig": signature}
    assert refusal(repack(files)) == "bundle_malformed"


def test_a_signature_that_is_not_base64url_is_bad_signature() -> None:
    files = {**good_files(), "manifest.sig": b'{"kid":"key_01","sig":"a+b/="}'}
    assert refusal(repack(files)) == "bad_signature"


# --- the manifest and the files --------------------------------------------------------


def test_a_tampered_file_is_file_hash_mismatch() -> None:
    files = {**good_files(), "spec.kv": SPEC_KV.replace(b"orders", b"ORDERS")}
    assert refusal(repack(files)) == "file_hash_mismatch"
    files = {**good_files(), "approval.cred": b"eyJ2IjoyfQ.c2ln"}
    assert refusal(repack(files)) == "file_hash_mismatch"


@pytest.mark.parametrize(
    "name", ["spec.kv", "runtime_config.txt", "secret_refs.json", "signing_keys.json"]
)
def test_a_dropped_file_is_missing_file(name: str) -> None:
    files = good_files()
    del files[name]
    assert refusal(repack(files)) == "missing_file"


@pytest.mark.parametrize("name", ["manifest.json", "manifest.sig"])
def test_a_dropped_manifest_or_signature_is_missing_file(name: str) -> None:
    files = good_files()
    del files[name]
    assert refusal(repack(files)) == "missing_file"


@pytest.mark.parametrize("name", ["extra.txt", "sub/spec.kv", "./spec.kv", "MANIFEST.JSON"])
def test_an_extra_file_is_unexpected_file(name: str) -> None:
    assert refusal(repack({**good_files(), name: b"x"})) == "unexpected_file"


def test_an_unlisted_approval_credential_is_unexpected_file() -> None:
    data = build_bundle(
        replace(INPUTS, approval_credential=None), sign=lambda p: (KID, KEY.sign(p))
    ).data
    assert refusal(repack({**unpack(data), "approval.cred": b"a.b"})) == "unexpected_file"


def test_another_bundle_version_is_unsupported_version() -> None:
    manifest = {**good_manifest(), "bundle_v": 2}
    assert refusal(resigned(good_files(), canonical_json(manifest))) == "unsupported_version"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: json.dumps(m, indent=1).encode(),  # signed, but not canonical
        lambda m: canonical_json({**m, "bundle_v": True}),
        lambda m: canonical_json({k: v for k, v in m.items() if k != "version_id"}),
        lambda m: canonical_json({**m, "extra": "x"}),
        lambda m: canonical_json({**m, "org_id": ""}),
        lambda m: canonical_json({**m, "files": {**m["files"], "notes.txt": m["spec_hash"]}}),
        lambda m: canonical_json({**m, "files": {**m["files"], "spec.kv": "md5:00"}}),
        lambda m: canonical_json({**m, "spec_hash": "sha256:" + "0" * 64}),
        lambda m: b"[]",
    ],
    ids=[
        "pretty",
        "bool-version",
        "missing-field",
        "extra-field",
        "empty-id",
        "unknown-file",
        "bad-digest",
        "spec-hash",
        "not-object",
    ],
)
def test_a_signed_manifest_of_the_wrong_shape_is_malformed(
    mutate: Callable[[dict[str, Any]], bytes],
) -> None:
    assert refusal(resigned(good_files(), mutate(good_manifest()))) == "bundle_malformed"


def test_signed_garbage_in_a_listed_file_is_malformed() -> None:
    files = {**good_files(), "runtime_config.txt": b"wait=spin\nprofile=default\n"}
    manifest = good_manifest()
    manifest["files"]["runtime_config.txt"] = fmt.sha256_digest(files["runtime_config.txt"])
    assert refusal(resigned(files, canonical_json(manifest))) == "bundle_malformed"


# --- unsafe entries --------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        special("spec.kv", tarfile.SYMTYPE, "/etc/passwd"),
        special("spec.kv", tarfile.LNKTYPE, "manifest.json"),
        special("spec.kv", tarfile.DIRTYPE),
        special("spec.kv", tarfile.CHRTYPE),
        special("spec.kv", tarfile.BLKTYPE),
        special("spec.kv", tarfile.FIFOTYPE),
        regular("../x", b"x"),
        regular("a/../../spec.kv", b"x"),
        regular("/etc/passwd", b"x"),
        regular("/spec.kv", b"x"),
        regular("..\\spec.kv", b"x"),
        regular("spec.kv\x01", b"x"),
    ],
    ids=[
        "symlink",
        "hardlink",
        "directory",
        "char-device",
        "block-device",
        "fifo",
        "dotdot",
        "nested-dotdot",
        "absolute",
        "absolute-known-name",
        "backslash",
        "control-char",
    ],
)
def test_unsafe_entries_are_refused(member: tuple[tarfile.TarInfo, bytes]) -> None:
    members = [regular(name, content) for name, content in good_files().items()]
    assert refusal(pack([member, *members])) == "unsafe_entry"
    assert refusal(pack([*members, member])) == "unsafe_entry"


def test_a_duplicate_name_is_unsafe_entry() -> None:
    members = [regular(name, content) for name, content in good_files().items()]
    assert refusal(pack([*members, regular("spec.kv", b"shadow")])) == "unsafe_entry"


def test_a_pax_header_is_unsafe_entry() -> None:
    info, content = regular("spec.kv", SPEC_KV)
    info.pax_headers = {"path": "spec.kv", "mtime": "1700000000"}
    assert refusal(pack([(info, content)], tarfile.PAX_FORMAT)) == "unsafe_entry"


def test_a_non_ascii_name_is_unsafe_entry() -> None:
    data = pack([regular("spéc.kv", b"x")], tarfile.PAX_FORMAT)
    assert refusal(data) == "unsafe_entry"  # PAX carries it in an extension header
    tar = bytearray(gzip.decompress(repack({"spec.kv": b"x"})))
    tar[0:7] = "spéc.k".encode()
    tar[148:156] = b"%06o\0 " % (sum(tar[:148]) + 256 + sum(tar[156:512]))
    assert refusal(gzip.compress(bytes(tar), mtime=0)) == "unsafe_entry"


# --- malformed archives ----------------------------------------------------------------


def gz(tar: bytes) -> bytes:
    return gzip.compress(tar, mtime=0)


GOOD_TAR = gzip.decompress(GOOD)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a gzip stream at all",
        GOOD_TAR,  # a tar, not gzipped
        GOOD[:-9],  # truncated
        GOOD[:100],
        GOOD + b"\0",  # data after the gzip member
        GOOD + GOOD,  # a second gzip member
        GOOD[:-8] + b"\0\0\0\0" + GOOD[-4:],  # bad CRC
        gz(b""),  # an empty tar
        gz(GOOD_TAR[:512]),  # a header, no content, no end
        gz(GOOD_TAR.rstrip(b"\0")),  # no end-of-archive block
        gz(GOOD_TAR + b"x"),  # data after the end-of-archive block
        gz(GOOD_TAR[:100] + b"X" + GOOD_TAR[101:]),  # header checksum
    ],
    ids=[
        "empty",
        "text",
        "plain-tar",
        "truncated",
        "truncated-early",
        "trailing-byte",
        "two-members",
        "bad-crc",
        "empty-tar",
        "header-only",
        "no-end-block",
        "after-end-block",
        "bad-checksum",
    ],
)
def test_malformed_archives_are_bundle_malformed(data: bytes) -> None:
    assert refusal(data) == "bundle_malformed"


def test_a_gnu_or_v7_tar_is_malformed() -> None:
    members = [regular(name, content) for name, content in good_files().items()]
    assert refusal(pack(members, tarfile.GNU_FORMAT)) == "bundle_malformed"
    tar = bytearray(GOOD_TAR)
    tar[257:265] = bytes(8)  # pre-POSIX: no magic
    tar[148:156] = b"%06o\0 " % (sum(tar[:148]) + 256 + sum(tar[156:512]))
    assert refusal(gz(bytes(tar))) == "bundle_malformed"


# --- limits ----------------------------------------------------------------------------


def test_too_many_entries_is_too_large() -> None:
    assert refusal(GOOD, max_entries=6) == "too_large"
    assert open_(GOOD, max_entries=7).kid == KID


def test_an_archive_inflating_past_the_limit_is_too_large() -> None:
    assert refusal(GOOD, max_bytes=len(GOOD_TAR) - 1) == "too_large"
    assert open_(GOOD, max_bytes=len(GOOD_TAR)).kid == KID


def test_a_compressed_archive_over_the_limit_is_too_large() -> None:
    assert refusal(GOOD + b"\0" * 100, max_bytes=len(GOOD) + 50) == "too_large"


def test_an_entry_claiming_more_than_the_limit_is_too_large() -> None:
    info = tarfile.TarInfo("spec.kv")
    info.size = 1 << 30
    header = info.tobuf(tarfile.USTAR_FORMAT)
    assert refusal(gz(header + bytes(1024)), max_bytes=1 << 20) == "too_large"


def streamed_gzip_bomb(size: int) -> bytes:
    """A gzip'd tar whose one entry is `size` zero bytes, compressed 1 MiB at a time:
    never holds more than a megabyte of the inflated stream."""
    info = tarfile.TarInfo("spec.kv")
    info.size = size
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [deflate.compress(info.tobuf(tarfile.USTAR_FORMAT))]
    megabyte = bytes(1 << 20)
    for _ in range(size >> 20):
        parts.append(deflate.compress(megabyte))
    parts.append(deflate.compress(bytes(1024)) + deflate.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return streamed_gzip_bomb(200 << 20)


def test_a_gzip_bomb_is_too_large_without_inflating_it(bomb: bytes) -> None:
    assert len(bomb) < 1 << 20  # 200 MiB of zeros in well under a megabyte
    tracemalloc.start()
    try:
        code = refusal(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == "too_large"
    # Bounded by the default limit (32 MiB) plus a chunk, far from the 200 MiB inside.
    assert peak < DEFAULT_MAX_BYTES + (16 << 20)


def test_a_gzip_bomb_stops_at_a_small_limit_too(bomb: bytes) -> None:
    assert refusal(bomb, max_bytes=1 << 20) == "too_large"


# --- nothing but BundleError -----------------------------------------------------------


def outcome(data: bytes) -> str:
    """The code of a refusal, or "ok"; any other exception fails the test."""
    try:
        open_(data)
    except BundleError as error:
        return error.code
    return "ok"


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_only_ever_raise_bundle_error(data: bytes) -> None:
    assert outcome(data) != "ok"


@FUZZ
@given(st.binary(max_size=2048))
def test_random_gzipped_bytes_only_ever_raise_bundle_error(data: bytes) -> None:
    assert outcome(gz(data)) != "ok"


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=8))
def test_mutated_bundles_only_ever_raise_bundle_error(edits: list[tuple[int, int]]) -> None:
    data = bytearray(GOOD)
    for position, value in edits:
        data[position] = value
    result = outcome(bytes(data))
    if data == GOOD:
        assert result == "ok"


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(GOOD_TAR) - 1), st.integers(0, 255)), max_size=8),
    st.integers(0, len(GOOD_TAR)),
)
def test_mutated_tar_streams_only_ever_raise_bundle_error(
    edits: list[tuple[int, int]], cut: int
) -> None:
    tar = bytearray(GOOD_TAR[:cut] if cut % 2 else GOOD_TAR)
    for position, value in edits:
        if position < len(tar):
            tar[position] = value
    outcome(gz(bytes(tar)))
