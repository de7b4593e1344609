"""Building deploy bundles (PRODUCT.md §9): the exact entries, canonical manifest, a
signature agents can verify, and bytes that depend on nothing but the inputs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from byteor_cloud.core.canonical_json import canonical_json
from byteor_cloud.deploybundle import format as fmt
from byteor_cloud.deploybundle.build import BuiltBundle, BundleInputs, build_bundle
from byteor_cloud.deploybundle.errors import BundleError
from byteor_cloud.signing import keys

SEED = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
KID = "key_01"
PUBLIC_KEY = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"  # of SEED, checked below
DOCUMENT: dict[str, Any] = {
    "keys": [
        {
            "kid": KID,
            "alg": "Ed25519",
            "public_key": PUBLIC_KEY,
            "status": "active",
            "not_after": None,
        }
    ]
}
SPEC_KV = b"spec.v=1\nname=orders\n"
CREDENTIAL = "eyJ2IjoxfQ.c2ln"

INPUTS = BundleInputs(
    org_id="org_01",
    project_id="prj_01",
    environment_id="env_01",
    deployment_id="dep_01",
    version_id="ver_01",
    spec_hash="sha256:bf099b656a8944cdd845ae7453ea9c1bd59bd11d1d4f128cd56e3b482bca8f8b",
    bundle_hash="sha256:" + "ab" * 32,
    spec_kv=SPEC_KV,
    runtime_config={"wait": "backoff", "profile": "low-latency", "adapter.http.timeout_ms": "250"},
    secret_refs={"DB_PASSWORD": "env:DB_PASSWORD", "API_TOKEN": "file:/etc/byteor/api_token"},
    signing_keys_document=DOCUMENT,
    approval_credential=CREDENTIAL,
)

# Hand-written: every byte of the manifest for INPUTS (keys sorted, no whitespace, the
# files map without manifest.json and manifest.sig), with the hashes of the files below.
GOLDEN_MANIFEST = (
    b'{"bundle_hash":"sha256:abababababababababababababababababababababababababababababababab",'
    b'"bundle_v":1,"deployment_id":"dep_01","environment_id":"env_01","files":{'
    b'"approval.cred":"sha256:73061e3718e4eccdca9444befdad23931e59d10c9a4b19c258d206a6e92ddcfd",'
    b'"runtime_config.txt":'
    b'"sha256:03ce26c06280ec1a09f3e2fb76f1e2750c90f1aa82aa34adcda8c44ceb2c41be",'
    b'"secret_refs.json":'
    b'"sha256:99876c8bb91595227f0311b417e2901f50989f9bafd5437badf856b95d8f91f6",'
    b'"signing_keys.json":'
    b'"sha256:19bf691938cf25f217fee6e2d6be01680bd4774073c1e25d432eaeadfd533f65",'
    b'"spec.kv":"sha256:bf099b656a8944cdd845ae7453ea9c1bd59bd11d1d4f128cd56e3b482bca8f8b"},'
    b'"org_id":"org_01","project_id":"prj_01",'
    b'"spec_hash":"sha256:bf099b656a8944cdd845ae7453ea9c1bd59bd11d1d4f128cd56e3b482bca8f8b",'
    b'"version_id":"ver_01"}'
)
GOLDEN_FILES = {
    "approval.cred": b"eyJ2IjoxfQ.c2ln",
    "runtime_config.txt": b"adapter.http.timeout_ms=250\nprofile=low-latency\nwait=backoff\n",
    "secret_refs.json": (
        b'{"API_TOKEN":"file:/etc/byteor/api_token","DB_PASSWORD":"env:DB_PASSWORD"}'
    ),
    "signing_keys.json": (
        b'{"keys":[{"alg":"Ed25519","kid":"key_01","not_after":null,'
        b'"public_key":"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg","status":"active"}]}'
    ),
    "spec.kv": SPEC_KV,
}

ALL_ENTRIES = [
    "approval.cred",
    "manifest.json",
    "manifest.sig",
    "runtime_config.txt",
    "secret_refs.json",
    "signing_keys.json",
    "spec.kv",
]


def sign(payload: bytes) -> tuple[str, bytes]:
    return KID, KEY.sign(payload)


def build(inputs: BundleInputs = INPUTS) -> BuiltBundle:
    return build_bundle(inputs, sign=sign)


def entries(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        result = {}
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            assert extracted is not None
            result[member.name] = extracted.read()
        return result


def names_in_order(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


# --- reproducibility -------------------------------------------------------------------

_SUBPROCESS_BUILD = """
import json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from byteor_cloud.deploybundle.build import BundleInputs, build_bundle
spec = json.load(sys.stdin)
key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(spec.pop("seed")))
kid = spec.pop("kid")
spec["spec_kv"] = bytes.fromhex(spec["spec_kv"])
built = build_bundle(BundleInputs(**spec), sign=lambda payload: (kid, key.sign(payload)))
print(json.dumps({"digest": built.digest, "data": built.data.hex()}))
"""


def _build_in_subprocess(hash_seed: str, tz: str) -> dict[str, str]:
    spec = {
        "seed": SEED.hex(),
        "kid": KID,
        **{field: getattr(INPUTS, field) for field in fmt.MANIFEST_FIELDS},
        "spec_kv": SPEC_KV.hex(),
        "runtime_config": INPUTS.runtime_config,
        "secret_refs": INPUTS.secret_refs,
        "signing_keys_document": DOCUMENT,
        "approval_credential": CREDENTIAL,
    }
    # A different hash seed and time zone in each process: nothing may depend on either.
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TZ": tz}
    result = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_BUILD],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    parsed: dict[str, str] = json.loads(result.stdout)
    return parsed


def test_the_same_inputs_give_the_same_bytes_in_this_process() -> None:
    first, second = build(), build()
    assert first.data == second.data
    assert first.digest == second.digest == fmt.sha256_digest(first.data)
    assert first.digest == "sha256:" + hashlib.sha256(first.data).hexdigest()


def test_the_same_inputs_give_the_same_bytes_in_other_processes() -> None:
    here = build()
    one = _build_in_subprocess("1", "UTC")
    two = _build_in_subprocess("4242", "Pacific/Kiritimati")
    assert one == two
    assert bytes.fromhex(one["data"]) == here.data
    assert one["digest"] == here.digest


def test_the_input_order_of_maps_does_not_matter() -> None:
    shuffled = replace(
        INPUTS,
        runtime_config=dict(reversed(list(INPUTS.runtime_config.items()))),
        secret_refs=dict(reversed(list(INPUTS.secret_refs.items()))),
    )
    assert build(shuffled).data == build().data


def test_different_inputs_give_different_digests() -> None:
    base = build().digest
    assert build(replace(INPUTS, deployment_id="dep_02")).digest != base
    assert build(replace(INPUTS, approval_credential=None)).digest != base
    assert build(replace(INPUTS, runtime_config={"profile": "default"})).digest != base


def test_the_uncompressed_tar_is_pinned() -> None:
    # The tar layer is fully determined by our code and the ustar format; if a Python
    # upgrade changed a single header byte, every rebuilt digest would change with it.
    tar = gzip.decompress(build().data)
    assert len(tar) == 10240
    assert hashlib.sha256(tar).hexdigest() == (
        "ea08bf4cf7c754aa5c1ff94bb8bad2faa5d734f7fc21376de4eb60c1ae455d18"
    )


def test_the_gzip_header_has_no_name_and_mtime_zero() -> None:
    data = build().data
    assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    flags, mtime = data[3], int.from_bytes(data[4:8], "little")
    assert flags == 0  # no FNAME, FCOMMENT, FEXTRA or FHCRC
    assert mtime == 0
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        stream.read()
        assert stream.mtime == 0
        assert stream.name == ""


def test_every_tar_header_is_a_plain_ustar_file_with_zeroed_metadata() -> None:
    tar = gzip.decompress(build().data)
    position, seen = 0, []
    while tar[position : position + 512] != bytes(512):
        header = tar[position : position + 512]
        name = header[:100].rstrip(b"\0").decode()
        seen.append(name)
        assert header[100:108] == b"0000644\0"  # mode
        assert header[108:116] == b"0000000\0"  # uid
        assert header[116:124] == b"0000000\0"  # gid
        assert header[136:148] == b"00000000000\0"  # mtime
        assert header[156:157] == b"0"  # a regular file: no pax, GNU or link headers
        assert header[157:257] == bytes(100)  # no link name
        assert header[257:265] == b"ustar\x0000"
        assert header[265:297] == bytes(32)  # uname
        assert header[297:329] == bytes(32)  # gname
        assert header[345:500] == bytes(155)  # no prefix: every entry at the root
        size = int(header[124:136].rstrip(b"\0"), 8)
        position += 512 + -(-size // 512) * 512
    assert seen == ALL_ENTRIES
    assert not tar[position:].strip(b"\0")  # end-of-archive blocks and record padding


def test_tarfile_reads_the_same_metadata() -> None:
    with tarfile.open(fileobj=io.BytesIO(build().data), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert member.isreg()
            assert (member.mode, member.uid, member.gid, member.mtime) == (0o644, 0, 0, 0)
            assert (member.uname, member.gname) == ("", "")
            assert member.pax_headers == {}


# --- entries and documents -------------------------------------------------------------


def test_entries_are_sorted_and_exactly_those_of_section_9_with_a_credential() -> None:
    built = build()
    assert names_in_order(built.data) == ALL_ENTRIES
    assert sorted(built.manifest["files"]) == [
        "approval.cred",
        "runtime_config.txt",
        "secret_refs.json",
        "signing_keys.json",
        "spec.kv",
    ]


def test_without_a_credential_there_is_no_approval_entry() -> None:
    built = build(replace(INPUTS, approval_credential=None))
    assert names_in_order(built.data) == [n for n in ALL_ENTRIES if n != "approval.cred"]
    assert "approval.cred" not in built.manifest["files"]


def test_the_manifest_matches_the_hand_written_golden_bytes() -> None:
    built = build()
    files = entries(built.data)
    assert files["manifest.json"] == GOLDEN_MANIFEST
    assert built.manifest == json.loads(GOLDEN_MANIFEST)
    for name, content in GOLDEN_FILES.items():
        assert files[name] == content, name
        assert built.manifest["files"][name] == "sha256:" + hashlib.sha256(content).hexdigest()


def test_runtime_config_lines_are_sorted_by_key_and_newline_terminated() -> None:
    config = {"b": "2", "a.b": "x=y", "a": "", "a-b": "1"}
    built = build(replace(INPUTS, runtime_config=config))
    assert entries(built.data)["runtime_config.txt"] == b"a=\na-b=1\na.b=x=y\nb=2\n"
    empty = build(replace(INPUTS, runtime_config={}))
    assert entries(empty.data)["runtime_config.txt"] == b""


def test_canonical_json_is_rfc_8785_for_bundle_values() -> None:
    value = {"é": 'ü\n\x01"\\', "b": [True, None, 3], "a": {"z": "", "\U0001f600": "x"}}
    # Keys by UTF-16 code units, non-ASCII as UTF-8, short escapes, \u00xx for others.
    expected = '{"a":{"z":"","\U0001f600":"x"},"b":[true,null,3],"é":"ü\\n\\u0001\\"\\\\"}'
    assert canonical_json(value) == expected.encode("utf-8")
    assert canonical_json({"\uff61": 1, "\U0001f600": 2}) == (
        '{"\U0001f600":2,"\uff61":1}'.encode()  # U+1F600 is D83D… in UTF-16, before FF61
    )
    with pytest.raises(ValueError, match="float"):
        canonical_json({"x": 1.5})


def test_the_signature_verifies_with_the_signing_keys_helpers() -> None:
    raw = KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert keys.b64url(raw) == PUBLIC_KEY
    files = entries(build().data)
    signature = json.loads(files["manifest.sig"])
    assert set(signature) == {"kid", "sig"}
    assert files["manifest.sig"] == canonical_json(signature)
    assert signature["kid"] == KID
    assert len(keys.from_b64url(signature["sig"])) == 64
    assert "=" not in signature["sig"]
    assert keys.verify(DOCUMENT["keys"], KID, files["manifest.json"], signature["sig"])
    assert not keys.verify(DOCUMENT["keys"], KID, files["manifest.json"] + b" ", signature["sig"])


# --- inputs the builder refuses --------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"spec_kv": b"spec.v=1\n"}, "spec_hash"),
        ({"bundle_hash": "sha256:ABC"}, "bundle_hash"),
        ({"deployment_id": ""}, "deployment_id"),
        ({"runtime_config": {"a=b": "c"}}, "runtime_config key"),
        ({"runtime_config": {"a": "line\nbreak"}}, "runtime_config value"),
        ({"secret_refs": {"A": 1}}, "secret_refs"),
        ({"signing_keys_document": {"keys": {}}}, "signing_keys_document"),
        (
            {"signing_keys_document": {"keys": [{**DOCUMENT["keys"][0], "weight": 0.5}]}},
            "float",
        ),
        ({"approval_credential": "a.b\n"}, "approval_credential"),
        ({"approval_credential": ""}, "approval_credential"),
    ],
)
def test_inputs_that_cannot_be_a_bundle_are_refused(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(BundleError, match=reason) as refused:
        build(replace(INPUTS, **change))
    assert refused.value.code == "bundle_inputs_invalid"


def test_a_signer_returning_encoded_text_is_refused() -> None:
    def text_signer(payload: bytes) -> tuple[str, bytes]:
        return KID, keys.b64url(KEY.sign(payload)).encode()

    with pytest.raises(BundleError) as refused:
        build_bundle(INPUTS, sign=text_signer)
    assert refused.value.code == "bundle_inputs_invalid"


def test_a_signature_the_shipped_keys_cannot_verify_is_refused() -> None:
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(BundleError) as refused:
        build_bundle(INPUTS, sign=lambda payload: (KID, stranger.sign(payload)))
    assert refused.value.code == "signature_unverifiable"
    with pytest.raises(BundleError) as unknown:
        build_bundle(INPUTS, sign=lambda payload: ("key_99", KEY.sign(payload)))
    assert unknown.value.code == "signature_unverifiable"
