"""A kept response as stored bytes: always encrypted with the master key.

Some first responses carry a secret (a new token or API key is shown once), and a replay
must show it again, so the stored form has to be reversible. Rather than deciding per
route which responses are secret, every stored response is sealed with
`SecretBox(master_key, "idempotency")`: nothing stored is readable without the master key,
and a route added later cannot forget to ask for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from byteor_cloud.core.crypto import SecretBox

BOX_PURPOSE = "idempotency"


@dataclass(frozen=True)
class StoredResponse:
    """What a replay sends: the first response's status, kept headers and body."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def seal(box: SecretBox, response: StoredResponse) -> bytes:
    """The encrypted bytes stored for `response` (its status lives in its own column)."""
    # One JSON line for the headers, then the body as is: JSON escapes newlines, so the
    # first newline ends the headers whatever the body holds.
    head = json.dumps({"headers": [list(pair) for pair in response.headers]}).encode()
    return box.encrypt(head + b"\n" + response.body)


def unseal(box: SecretBox, stored: bytes, *, status_code: int, encrypted: bool) -> StoredResponse:
    """The response stored by `seal`; `ValueError` if the master key cannot read it."""
    plain = box.decrypt(stored) if encrypted else stored
    head, _, body = plain.partition(b"\n")
    headers = tuple((str(name), str(value)) for name, value in json.loads(head)["headers"])
    return StoredResponse(status_code, headers, body)
