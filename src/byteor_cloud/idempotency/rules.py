"""The pure rules of idempotent POSTs: valid keys, request fingerprints, what is kept."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

KEY_HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"

# A repeat within this long replays the first response; later, the key is free again.
RETENTION = timedelta(hours=24)
# An "in progress" record older than this belongs to a request whose process died
# between claiming the key and answering: a retry may take the key over. The claim is
# taken only after the whole body has arrived, so this bounds the app's handling time,
# which no POST comes near.
ABANDONED_AFTER = timedelta(minutes=10)
# Responses with a larger body (downloads, streams) are not kept: the key is released.
MAX_STORED_BODY_BYTES = 1024 * 1024
# The response headers a replay repeats (the edge adds the request id and rate limits).
REPLAYED_HEADERS = frozenset({"content-type", "location", "etag"})

MAX_KEY_CHARS = 255
_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_CHARS}}}")


def valid_key(value: str) -> bool:
    """1–255 characters of printable ASCII (space to tilde), not only spaces."""
    return _KEY.fullmatch(value) is not None and not value.isspace()


def fingerprint(method: str, path: str, query_string: bytes, body: bytes) -> str:
    """sha256 over the method, path, query string and body, each length-prefixed so that
    no two different requests frame to the same bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query_string, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def is_kept(status_code: int) -> bool:
    """Whether a response is stored for replay.

    A 2xx, 3xx or 4xx is what the same request would get again, so it is kept. Not kept:
    5xx (the client should be able to retry), 401 (the credential the key is scoped to was
    not accepted, so there is no owner to replay to) and 429 (rate limited: by definition
    a later attempt may succeed).
    """
    return status_code < 500 and status_code not in (401, 429)
