"""The relying party's checks, against an in-process fake provider (httpx MockTransport):
PKCE on the wire, the ID token's signature and claims, key rotation, discovery, and the
sealed flow cookie. No database."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from byteor_cloud.identity.oidc import Flow, FlowSealer, OidcClient, OidcError

ISSUER = "https://idp.example"
CLIENT_ID = "byteor"
REDIRECT_URI = "https://cloud.example/auth/callback"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class FakeProvider:
    """Discovery, JWKS and a token endpoint that checks PKCE and signs what it is told."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
        self.published = [self.key]
        self.signing_key = self.key
        self.document_issuer = ISSUER
        self.challenge: str | None = None
        self.nonce = ""
        self.claims: dict[str, Any] = {}
        self.header: dict[str, Any] = {}
        self.raw_id_token: str | None = None
        self.jwks_fetches = 0

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "subject-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce,
            "email": "ada@example.com",
            "email_verified": True,
            **self.claims,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        header = {"alg": "ES256", "kid": self.signing_key.kid, **self.header}
        return jwt.encode(header, claims, self.signing_key)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.document_issuer,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "id_token_signing_alg_values_supported": ["ES256"],
                },
            )
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json=KeySet(self.published).as_dict())
        assert request.url.path == "/token"
        form = parse_qs(request.content.decode())
        verifier = form["code_verifier"][0]
        assert request.headers["authorization"].startswith("Basic ")
        assert form["redirect_uri"] == [REDIRECT_URI]
        if _b64(hashlib.sha256(verifier.encode()).digest()) != self.challenge:
            return httpx.Response(400, json={"error": "invalid_grant"})
        token = self.raw_id_token or self.id_token()
        return httpx.Response(
            200, json={"access_token": "at", "token_type": "Bearer", "id_token": token}
        )


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def client(provider: FakeProvider) -> OidcClient:
    return OidcClient(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret="shh",
        redirect_uri=REDIRECT_URI,
        transport=httpx.MockTransport(provider.handle),
    )


async def _begin(client: OidcClient, provider: FakeProvider) -> Flow:
    flow = FlowSealer.new_flow("/")
    query = parse_qs(urlsplit(await client.authorization_url(flow)).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [flow.state]
    assert query["nonce"] == [flow.nonce]
    provider.challenge = query["code_challenge"][0]
    provider.nonce = flow.nonce
    return flow


async def test_a_valid_id_token_is_accepted_with_the_pkce_verifier_sent(
    client: OidcClient, provider: FakeProvider
) -> None:
    flow = await _begin(client, provider)
    identity = await client.finish(flow, code="c")
    assert (identity.issuer, identity.subject, identity.email) == (
        ISSUER,
        "subject-1",
        "ada@example.com",
    )
    assert identity.email_verified is True


async def test_a_wrong_pkce_verifier_is_refused_by_the_provider(
    client: OidcClient, provider: FakeProvider
) -> None:
    flow = await _begin(client, provider)
    other = FlowSealer.new_flow("/")
    with pytest.raises(OidcError) as refused:
        await client.finish(
            Flow(**{**flow.__dict__, "code_verifier": other.code_verifier}), code="c"
        )
    assert refused.value.reason == "token_exchange_failed"


def _unsigned(provider: FakeProvider) -> str:
    header = _b64(json.dumps({"alg": "none"}).encode())
    payload = jwt.encode({"alg": "ES256"}, {"x": 1}, provider.key).split(".")[1]
    return f"{header}.{payload}."


TAMPERINGS: dict[str, Callable[[FakeProvider], None]] = {
    "signed with another key": lambda p: setattr(
        p, "signing_key", ECKey.generate_key("P-256", parameters={"kid": "k1"})
    ),
    "not signed at all": lambda p: setattr(p, "raw_id_token", _unsigned(p)),
    "for another client": lambda p: p.claims.update(aud="someone-else"),
    "from another issuer": lambda p: p.claims.update(iss="https://evil.example"),
    "with another nonce": lambda p: p.claims.update(nonce="replayed"),
    "without a nonce": lambda p: p.claims.update(nonce=None),
    "expired": lambda p: p.claims.update(exp=int(time.time()) - 600, iat=int(time.time()) - 900),
    "without a subject": lambda p: p.claims.update(sub=None),
    "with an overlong subject": lambda p: p.claims.update(sub="s" * 256),
}


@pytest.mark.parametrize("tampering", TAMPERINGS, ids=list(TAMPERINGS))
async def test_a_bad_id_token_is_refused(
    client: OidcClient, provider: FakeProvider, tampering: str
) -> None:
    flow = await _begin(client, provider)
    TAMPERINGS[tampering](provider)
    with pytest.raises(OidcError) as refused:
        await client.finish(flow, code="c")
    assert refused.value.reason == "invalid_id_token"


async def test_rotated_provider_keys_are_fetched_again(
    client: OidcClient, provider: FakeProvider
) -> None:
    flow = await _begin(client, provider)
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    provider.published = [rotated]
    provider.signing_key = rotated
    assert (await client.finish(flow, code="c")).subject == "subject-1"
    assert provider.jwks_fetches == 2


async def test_discovery_naming_another_issuer_is_refused(
    client: OidcClient, provider: FakeProvider
) -> None:
    provider.document_issuer = "https://evil.example"
    with pytest.raises(OidcError) as refused:
        await client.authorization_url(FlowSealer.new_flow("/"))
    assert refused.value.reason == "discovery_failed"


def test_the_flow_cookie_is_sealed_and_short_lived() -> None:
    sealer = FlowSealer("master-key-one-0123456789")
    flow = sealer.new_flow("/orgs")
    sealed = sealer.seal(flow)
    assert flow.code_verifier not in sealed
    assert sealer.unseal(sealed) == flow
    assert sealer.unseal(sealed[:-4] + "AAAA") is None
    assert FlowSealer("another-master-key-987654321").unseal(sealed) is None
    stale = Flow(**{**flow.__dict__, "started_at": flow.started_at - 3600})
    assert sealer.unseal(sealer.seal(stale)) is None
    assert sealer.unseal(None) is None
