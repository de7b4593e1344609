"""Building a deploy bundle (PRODUCT.md §9): what the `bundle_build` job calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from byteor_cloud.core.canonical_json import canonical_json, parse_strict_json
from byteor_cloud.deploybundle import format as fmt
from byteor_cloud.deploybundle.archive import write_archive
from byteor_cloud.deploybundle.errors import BundleError
from byteor_cloud.signing import keys

#: Signs the manifest bytes: returns the key id and the raw 64-byte Ed25519 signature.


@dataclass(frozen=True, kw_only=True)
class BundleInputs:
    """Everything a deploy bundle is made of; the same inputs give the same bytes."""

    org_id: str
    project_id: str
    environment_id: str
    deployment_id: str
    version_id: str
    spec_hash: str
    bundle_hash: str
    spec_kv: bytes  # exactly the bytes `spec_hash` hashes
    runtime_config: dict[str, str]
    secret_refs: dict[str, str]
    signing_keys_document: dict[str, Any]  # {"keys": [...]}, as the signing-keys route
    approval_credential: str | None = None


@dataclass(frozen=True)
class BuiltBundle:
    data: bytes  # the tar.gz
    digest: str  # sha256:<hex> of `data`: the name it is stored and fetched by
    manifest: dict[str, Any]


def build_bundle(inputs: BundleInputs, *, sign: keys.RawSigner) -> BuiltBundle:
    """The signed, reproducible deploy bundle of `inputs`; BundleError
    `bundle_inputs_invalid` or `signature_unverifiable` when it cannot be built."""
    files = _files(inputs)
    manifest: dict[str, Any] = {
        "bundle_v": fmt.BUNDLE_V,
        **{field: getattr(inputs, field) for field in fmt.MANIFEST_FIELDS},
        "files": {name: fmt.sha256_digest(content) for name, content in files.items()},
    }
    manifest_bytes = canonical_json(manifest)
    kid, signature = sign(manifest_bytes)
    signature_file = _signature_file(inputs.signing_keys_document, kid, manifest_bytes, signature)
    data = write_archive({**files, fmt.MANIFEST: manifest_bytes, fmt.SIGNATURE: signature_file})
    return BuiltBundle(
        data=data, digest=fmt.sha256_digest(data), manifest=parse_strict_json(manifest_bytes)
    )


def _invalid(message: str) -> BundleError:
    return BundleError("bundle_inputs_invalid", message)


def _files(inputs: BundleInputs) -> dict[str, bytes]:
    """Every entry but the manifest and its signature, after checking the inputs."""
    for field in fmt.MANIFEST_FIELDS:
        value = getattr(inputs, field)
        if not isinstance(value, str) or not value:
            raise _invalid(f"{field} must be a non-empty string")
    for field in ("spec_hash", "bundle_hash"):
        if not fmt.DIGEST.fullmatch(getattr(inputs, field)):
            raise _invalid(f"{field} must be sha256:<64 lowercase hex digits>")
    if fmt.sha256_digest(inputs.spec_kv) != inputs.spec_hash:
        raise _invalid("spec_kv is not the content spec_hash names")
    document = inputs.signing_keys_document
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _invalid('signing_keys_document must be {"keys": [...]}')
    if not all(isinstance(entry, dict) for entry in document["keys"]):
        raise _invalid('signing_keys_document must be {"keys": [...]}')
    try:
        files = {
            fmt.SPEC: bytes(inputs.spec_kv),
            fmt.RUNTIME_CONFIG: fmt.runtime_config_text(inputs.runtime_config),
            fmt.SECRET_REFS: canonical_json(fmt.string_map(inputs.secret_refs, "secret_refs")),
            fmt.SIGNING_KEYS: canonical_json(document),
        }
    except ValueError as error:
        raise _invalid(str(error)) from None
    credential = inputs.approval_credential
    if credential is not None:
        if not credential or not credential.isascii() or not credential.isprintable():
            raise _invalid("approval_credential must be printable ASCII text")
        if any(c.isspace() for c in credential):
            raise _invalid("approval_credential must not contain whitespace")
        files[fmt.APPROVAL] = credential.encode("ascii")
    return files


def _signature_file(
    document: dict[str, Any], kid: object, manifest_bytes: bytes, signature: object
) -> bytes:
    """`manifest.sig`, once the signature verifies with the keys the bundle ships: a
    signer whose key agents cannot learn would build a bundle no agent accepts."""
    if not isinstance(kid, str) or not kid:
        raise _invalid("the signer returned no key id")
    if not isinstance(signature, bytes) or len(signature) != keys.SIGNATURE_BYTES:
        raise _invalid("the signer must return the raw 64-byte Ed25519 signature")
    encoded = keys.b64url(signature)
    if not keys.verify(document["keys"], kid, manifest_bytes, encoded):
        raise BundleError("signature_unverifiable")
    return canonical_json({"kid": kid, "sig": encoded})
