"""The one failure type of deploy bundles, with stable codes (docs/deploy-bundle.md)."""

from __future__ import annotations

from byteor_cloud.core.errors import InvalidInput

# Every code a bundle failure can carry, with the message it gets when none is given.
# Reading (agent side), in the order open_bundle checks them:
MESSAGES: dict[str, str] = {
    "too_large": "the bundle exceeds the reader's limits (bytes or entries)",
    "bundle_malformed": "the bundle is not a well-formed deploy bundle",
    "unsafe_entry": "the archive holds an entry that is not a plain file at its root",
    "unexpected_file": "the archive holds a file the bundle does not list",
    "missing_file": "a file the bundle needs is not in the archive",
    "unknown_key": "the manifest is not signed by a trusted, non-retired key",
    "bad_signature": "the manifest signature does not verify",
    "unsupported_version": "the manifest's bundle_v is not supported",
    "file_hash_mismatch": "a file does not match the hash the manifest lists",
    # Building (control plane side):
    "bundle_inputs_invalid": "the deploy bundle inputs cannot be encoded as a bundle",
    "signature_unverifiable": "the manifest signature does not verify with the bundle's keys",
}


class BundleError(InvalidInput):
    """A deploy bundle that cannot be built, read or trusted; `code` says why."""

    default_code = "bundle_malformed"

    def __init__(self, code: str, message: str | None = None) -> None:
        if code not in MESSAGES:
            raise ValueError(f"unknown bundle error code {code!r}")
        super().__init__(message or MESSAGES[code], code=code)
