"""The pure parts: key syntax, fingerprints, what is kept, sealing, the credential scope."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from byteor_cloud.api.idempotency import credential_scope
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.idempotency.responses import StoredResponse, seal, unseal
from byteor_cloud.idempotency.rules import fingerprint, is_kept, valid_key
from byteor_cloud.identity.tokens import digest


def test_keys_are_1_to_255_printable_ascii_characters() -> None:
    assert valid_key("a")
    assert valid_key("order 42 / retry ~!")
    assert valid_key("x" * 255)
    for bad in ("", "   ", "x" * 256, "é", "a\tb", "a\nb", "\x7f"):
        assert not valid_key(bad), bad


def test_fingerprints_differ_by_method_path_query_and_body() -> None:
    base = fingerprint("POST", "/api/v1/orgs", b"", b"{}")
    assert base == fingerprint("POST", "/api/v1/orgs", b"", b"{}")
    variants = {
        fingerprint("PUT", "/api/v1/orgs", b"", b"{}"),
        fingerprint("POST", "/api/v1/orgs/", b"", b"{}"),
        fingerprint("POST", "/api/v1/orgs", b"a=1", b"{}"),
        fingerprint("POST", "/api/v1/orgs", b"", b"{ }"),
        # Moving bytes between parts must not collide.
        fingerprint("POST", "/api/v1/orgs{}", b"", b""),
    }
    assert base not in variants
    assert len(variants) == 5


@pytest.mark.parametrize(
    ("status", "kept"),
    [(200, True), (201, True), (303, True), (400, True), (404, True), (409, True),
     (422, True), (401, False), (429, False), (500, False), (503, False)],
)  # fmt: skip
def test_which_responses_are_kept(status: int, kept: bool) -> None:
    assert is_kept(status) is kept


def test_sealed_responses_round_trip_only_with_the_same_key() -> None:
    box = SecretBox("master-key-one", "idempotency")
    response = StoredResponse(201, (("content-type", "application/json"),), b'{"a":"\n"}')
    sealed = seal(box, response)
    assert b"application/json" not in sealed
    assert unseal(box, sealed, status_code=201, encrypted=True) == response
    with pytest.raises(ValueError, match="master key"):
        unseal(SecretBox("master-key-two", "idempotency"), sealed, status_code=201, encrypted=True)
    with pytest.raises(ValueError, match="master key"):
        unseal(SecretBox("master-key-one", "other"), sealed, status_code=201, encrypted=True)


def _request(*headers: tuple[bytes, bytes]) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": list(headers)})


def test_the_credential_scope_is_a_digest_of_what_authenticates() -> None:
    bearer = (b"authorization", b"Bearer bc_pat_abc")
    cookie = (b"cookie", b"byteor_session=bc_ses_xyz")
    assert credential_scope(_request(bearer)) == digest("bc_pat_abc")
    assert credential_scope(_request(cookie)) == digest("bc_ses_xyz")
    assert credential_scope(_request(bearer, cookie)) == digest("bc_pat_abc")
    assert credential_scope(_request((b"authorization", b"Basic Zm9vOmJhcg=="))) is None
    assert credential_scope(_request((b"authorization", b"Bearer "))) is None
    assert credential_scope(_request()) is None
