"""What a deploy bundle holds and how each part is spelled, shared by builder and reader.

Canonical JSON here is RFC 8785 for the values a bundle carries: object keys sorted by
their UTF-16 code units, no insignificant whitespace, UTF-8, strings escaped as `json`
writes them (`\\"`, `\\\\`, `\\b`, `\\f`, `\\n`, `\\r`, `\\t`, other C0 controls as
`\\u00xx`), integers in decimal. Floats are refused: no bundle document has one (the
manifest's only number is `bundle_v`), and refusing them keeps every question of number
spelling out of the signed bytes.

Functions raise ValueError; the builder reports it as `bundle_inputs_invalid`, the reader
as `bundle_malformed`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

BUNDLE_V = 1

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SPEC = "spec.kv"
RUNTIME_CONFIG = "runtime_config.txt"
SECRET_REFS = "secret_refs.json"  # noqa: S105 - a file name, not a secret
SIGNING_KEYS = "signing_keys.json"
APPROVAL = "approval.cred"

#: Files every bundle lists in its manifest; `approval.cred` only when an approval applies.
REQUIRED_FILES = frozenset({SPEC, RUNTIME_CONFIG, SECRET_REFS, SIGNING_KEYS})
LISTABLE_FILES = REQUIRED_FILES | {APPROVAL}
#: Every name an archive entry may have.
ENTRY_NAMES = LISTABLE_FILES | {MANIFEST, SIGNATURE}

#: The manifest's string fields, besides `bundle_v` and `files`.
MANIFEST_FIELDS = (
    "org_id",
    "project_id",
    "environment_id",
    "deployment_id",
    "version_id",
    "spec_hash",
    "bundle_hash",
)

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def sha256_digest(data: bytes) -> str:
    """`sha256:<lowercase hex>` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def runtime_config_text(config: Mapping[str, str]) -> bytes:
    """`key=value` lines sorted by key bytes, each ending in `\\n` (empty map: no bytes)."""
    for key, value in config.items():
        if not isinstance(key, str) or not key or "=" in key or _CONTROL.search(key):
            raise ValueError(f"runtime_config key {key!r} cannot be written as a line")
        if not isinstance(value, str) or _CONTROL.search(value):
            raise ValueError(f"runtime_config value of {key!r} cannot be written as a line")
    ordered = sorted(config.items(), key=lambda item: item[0].encode("utf-8", "surrogatepass"))
    try:
        return "".join(f"{key}={value}\n" for key, value in ordered).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("runtime_config must be valid Unicode") from None


def parse_runtime_config(data: bytes) -> dict[str, str]:
    """The map `runtime_config_text` wrote; anything not in that exact form is refused."""
    text = data.decode("utf-8")
    if text and not text.endswith("\n"):
        raise ValueError("runtime_config.txt must end with a newline")
    config: dict[str, str] = {}
    for line in text.split("\n")[:-1]:
        key, equals, value = line.partition("=")
        if not equals or key in config:
            raise ValueError("runtime_config.txt lines are unique key=value pairs")
        config[key] = value
    if runtime_config_text(config) != data:
        raise ValueError("runtime_config.txt is not in canonical form")
    return config


def string_map(value: object, what: str) -> dict[str, str]:
    """`value` as a JSON object of strings to strings, or ValueError naming `what`."""
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise ValueError(f"{what} must be an object of strings")
    return dict(value)
