"""Opening a deploy bundle the way an agent must before activating it (PRODUCT.md §9).

Order (the first failure wins, docs/deploy-bundle.md lists the codes): read the archive
safely within the limits; the manifest signature against keys the agent already trusts —
never the bundle's own `signing_keys.json`; the manifest itself; that the archive holds
exactly the listed files; every file hash. Checking the approval credential is the
credential verifier's job: the text is returned as found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from byteor_cloud.core.canonical_json import canonical_json, parse_strict_json
from byteor_cloud.core.clock import utcnow
from byteor_cloud.deploybundle import format as fmt
from byteor_cloud.deploybundle.archive import read_archive
from byteor_cloud.deploybundle.errors import BundleError
from byteor_cloud.signing import keys
from byteor_cloud.signing.rules import PUBLISHED

#: Largest archive, compressed or inflated, an agent accepts by default. A bundle is a
#: spec (plans are capped at 1 MiB; their specs are of the same order) and a few small
#: documents, so 32 MiB is generous and still cheap to hold in memory.
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
#: A bundle has at most 7 entries; a little room for nothing in particular.
DEFAULT_MAX_ENTRIES = 16


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and file hashes have been verified."""

    manifest: dict[str, Any]
    kid: str  # the trusted key that signed the manifest
    files: dict[str, bytes]  # the files the manifest lists, name → content
    spec_kv: bytes
    runtime_config: dict[str, str]
    secret_refs: dict[str, str]
    signing_keys: dict[str, Any]  # as shipped: informative only, never trusted from here
    approval_credential: str | None  # verified by the credential verifier, not here


def open_bundle(
    data: bytes,
    *,
    trusted_keys: Sequence[Mapping[str, Any]],
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    now: datetime | None = None,
) -> VerifiedBundle:
    """Read and verify a deploy bundle; `trusted_keys` are the `keys` of the signing-keys
    document the agent holds. Raises BundleError with the first code that applies."""
    entries = read_archive(
        data, max_bytes=max_bytes, max_entries=max_entries, names=fmt.ENTRY_NAMES
    )
    manifest_bytes = _entry(entries, fmt.MANIFEST)
    kid, signature = _signature(_entry(entries, fmt.SIGNATURE))
    _check_signature(trusted_keys, kid, manifest_bytes, signature, now or utcnow())
    manifest = _manifest(manifest_bytes)
    listed: dict[str, str] = manifest["files"]
    _check_files(entries, listed)
    try:
        return VerifiedBundle(
            manifest=manifest,
            kid=kid,
            files={name: entries[name] for name in sorted(listed)},
            spec_kv=entries[fmt.SPEC],
            runtime_config=fmt.parse_runtime_config(entries[fmt.RUNTIME_CONFIG]),
            secret_refs=fmt.string_map(parse_strict_json(entries[fmt.SECRET_REFS]), "secret_refs"),
            signing_keys=_object(parse_strict_json(entries[fmt.SIGNING_KEYS]), fmt.SIGNING_KEYS),
            approval_credential=_credential(entries.get(fmt.APPROVAL)),
        )
    except ValueError as error:
        raise BundleError("bundle_malformed", str(error)) from None


def _entry(entries: Mapping[str, bytes], name: str) -> bytes:
    if name not in entries:
        raise BundleError("missing_file", f"the archive has no {name}")
    return entries[name]


def _signature(data: bytes) -> tuple[str, str]:
    try:
        document = parse_strict_json(data)
    except ValueError as error:
        raise BundleError("bundle_malformed", f"{fmt.SIGNATURE}: {error}") from None
    if (
        not isinstance(document, dict)
        or set(document) != {"kid", "sig"}
        or not isinstance(document["kid"], str)
        or not isinstance(document["sig"], str)
        or not document["kid"]
    ):
        raise BundleError("bundle_malformed", f'{fmt.SIGNATURE} must be {{"kid", "sig"}}')
    return document["kid"], document["sig"]


def _check_signature(
    trusted_keys: Sequence[Mapping[str, Any]],
    kid: str,
    manifest_bytes: bytes,
    signature: str,
    now: datetime,
) -> None:
    entry = next((key for key in trusted_keys if key.get("kid") == kid), None)
    if entry is None or not _usable(entry, now):
        raise BundleError("unknown_key", f"key {kid!r} is not a trusted, non-retired key")
    if not keys.verify(trusted_keys, kid, manifest_bytes, signature, now=now):
        raise BundleError("bad_signature")


def _usable(entry: Mapping[str, Any], now: datetime) -> bool:
    """Whether a trusted key may still verify: Ed25519, published (not retired) and, when
    retiring, within its `not_after` — the rules `signing.keys.verify` applies."""
    if entry.get("alg") != keys.ALG or entry.get("status") not in PUBLISHED:
        return False
    not_after = entry.get("not_after")
    if not_after is None:
        return True
    try:
        return datetime.fromisoformat(str(not_after)) >= now
    except (TypeError, ValueError):
        return False  # an unreadable or zone-less bound is no bound we can honour


def _manifest(data: bytes) -> dict[str, Any]:
    def malformed(reason: str) -> BundleError:
        return BundleError("bundle_malformed", f"{fmt.MANIFEST}: {reason}")

    try:
        manifest = parse_strict_json(data)
        canonical = canonical_json(manifest)
    except ValueError as error:
        raise malformed(str(error)) from None
    if not isinstance(manifest, dict):
        raise malformed("not a JSON object")
    version = manifest.get("bundle_v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise malformed("bundle_v must be an integer")
    if version != fmt.BUNDLE_V:
        raise BundleError("unsupported_version", f"bundle_v {version} is not supported")
    if canonical != data:
        raise malformed("not canonical JSON")
    if set(manifest) != {"bundle_v", "files", *fmt.MANIFEST_FIELDS}:
        raise malformed("fields are not exactly those of bundle_v 1")
    if not all(isinstance(manifest[f], str) and manifest[f] for f in fmt.MANIFEST_FIELDS):
        raise malformed("ids and hashes must be non-empty strings")
    files = manifest["files"]
    if not isinstance(files, dict) or not all(
        isinstance(digest, str) and fmt.DIGEST.fullmatch(digest) for digest in files.values()
    ):
        raise malformed("files must map names to sha256:<hex> digests")
    if not fmt.REQUIRED_FILES <= set(files) <= fmt.LISTABLE_FILES:
        raise malformed("files must list the bundle's files and nothing else")
    if files[fmt.SPEC] != manifest["spec_hash"]:
        raise malformed("spec_hash is not the hash of spec.kv")
    return manifest


def _check_files(entries: Mapping[str, bytes], listed: Mapping[str, str]) -> None:
    present = set(entries) - {fmt.MANIFEST, fmt.SIGNATURE}
    missing = sorted(set(listed) - present)
    if missing:
        raise BundleError("missing_file", f"{missing[0]} is listed but not in the archive")
    extra = sorted(present - set(listed))
    if extra:
        raise BundleError("unexpected_file", f"{extra[0]} is in the archive but not listed")
    for name in sorted(listed):
        if fmt.sha256_digest(entries[name]) != listed[name]:
            raise BundleError("file_hash_mismatch", f"{name} does not match its hash")


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object")
    return value


def _credential(data: bytes | None) -> str | None:
    if data is None:
        return None
    text = data.decode("ascii")  # UnicodeDecodeError is a ValueError: bundle_malformed
    if not text.isprintable():
        raise ValueError(f"{fmt.APPROVAL} must be printable ASCII text")
    return text
