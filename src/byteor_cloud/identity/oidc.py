"""The OpenID Connect relying party: discovery, the authorization-code request with PKCE,
state and nonce, the code exchange, and ID token validation. No database, no framework.

The protocol pieces are authlib's (authorization URL and PKCE challenge, token request
body, client authentication, ID token claim rules) and joserfc's (JWS signature against
the provider's JWKS); this module only wires them to one provider and to httpx. authlib's
own httpx integration is deprecated in favour of a second HTTP client package, so the two
HTTP calls here use the project's httpx directly.

The state, nonce and PKCE verifier of a sign-in in progress travel in a cookie sealed
with the master key (`FlowSealer`): nothing is stored server-side, any API process can
finish a flow another one began, and the cookie is only readable by this instance.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import httpx
from authlib.oauth2.client import OAuth2Client  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_token_request,
)
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from byteor_cloud.core.crypto import SecretBox

SCOPES = "openid email profile"
# Time a person has to finish at the identity provider before the flow cookie is stale.
FLOW_LIFETIME = timedelta(minutes=10)
# Provider metadata and keys are re-read this often (and at once on an unknown key id),
# so a provider's key rotation is picked up without a restart.
METADATA_TTL = timedelta(hours=1)
HTTP_TIMEOUT_S = 10.0
# Clock skew tolerated on exp/iat between us and the provider.
ID_TOKEN_LEEWAY_S = 60
# Asymmetric signatures only: `none` is never acceptable, and HS* would be keyed by the
# client secret rather than the provider's published keys.
ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_SUBJECT_CHARS = 255  # user_identities.subject; OIDC Core caps `sub` at 255 too
_MAX_SEALED_CHARS = 4096


class OidcError(Exception):
    """A failed step of the flow; `reason` is a stable code for logs, never a secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    token_auth_method: str


@dataclass(frozen=True)
class Flow:
    """A sign-in in progress, sealed into the flow cookie between start and callback."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str
    started_at: int  # epoch seconds


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a validated ID token says about the person."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


class FlowSealer:
    """Encrypts and authenticates a `Flow` for the cookie, with a lifetime."""

    def __init__(self, master_key: str) -> None:
        self._box = SecretBox(master_key, "oidc-sign-in-flow")

    @staticmethod
    def new_flow(next_path: str) -> Flow:
        return Flow(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            # RFC 7636: 43-128 characters of the unreserved set; 64 bytes → 86 characters.
            code_verifier=secrets.token_urlsafe(64),
            next_path=next_path,
            started_at=int(time.time()),
        )

    def seal(self, flow: Flow) -> str:
        return self._box.encrypt(json.dumps(asdict(flow)).encode()).decode("ascii")

    def unseal(self, sealed: str | None) -> Flow | None:
        """The flow in a cookie, or None if absent, forged, from another key or stale."""
        if not sealed or len(sealed) > _MAX_SEALED_CHARS:
            return None
        try:
            flow = Flow(**json.loads(self._box.decrypt(sealed.encode("ascii"))))
        except (ValueError, TypeError, UnicodeEncodeError):
            return None
        age = time.time() - flow.started_at
        if not 0 <= age <= FLOW_LIFETIME.total_seconds():
            return None
        return flow


def _metadata_from(document: Any, issuer: str) -> ProviderMetadata:
    if not isinstance(document, dict):
        raise OidcError("discovery_failed", "provider metadata is not a JSON object")
    # OIDC Discovery §4.3: the issuer in the document must be exactly the configured one.
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise OidcError("discovery_failed", "provider metadata names another issuer")
    endpoints = [document.get(name) for name in ("authorization_endpoint", "token_endpoint")]
    jwks_uri = document.get("jwks_uri")
    if not all(isinstance(url, str) and url for url in [*endpoints, jwks_uri]):
        raise OidcError("discovery_failed", "provider metadata lacks an endpoint")
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(alg for alg in offered if alg in ALLOWED_ALGORITHMS)
    if not algorithms:
        raise OidcError("discovery_failed", "provider signs ID tokens with no accepted algorithm")
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = (
        "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    )
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=str(endpoints[0]),
        token_endpoint=str(endpoints[1]),
        jwks_uri=str(jwks_uri),
        algorithms=algorithms,
        token_auth_method=auth_method,
    )


def _claim_text(claims: dict[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    return value[:limit] if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class _Provider:
    metadata: ProviderMetadata
    keys: KeySet
    loaded_at: float  # time.monotonic()


_TTL_S = METADATA_TTL.total_seconds()


class OidcClient:
    """One configured identity provider (BYTEOR_CLOUD_OIDC_*), shared by an app."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self._oauth = OAuth2Client(
            None,
            client_id=client_id,
            client_secret=client_secret,
            scope=SCOPES,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )
        self._has_secret = bool(client_secret)
        self._transport = transport
        self._provider: _Provider | None = None

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=HTTP_TIMEOUT_S, transport=self._transport, follow_redirects=False
        )

    async def _get_json(self, url: str) -> Any:
        try:
            async with self._http() as client:
                response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            message = f"identity provider request failed: {type(exc).__name__}"
            raise OidcError("discovery_failed", message) from None

    async def _load(self, *, refresh: bool = False) -> _Provider:
        """The discovery document and keys, re-read after METADATA_TTL or on request."""
        provider = self._provider
        if provider is None or refresh or time.monotonic() - provider.loaded_at > _TTL_S:
            document = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            metadata = _metadata_from(document, self.issuer)
            jwks = await self._get_json(metadata.jwks_uri)
            try:
                keys = KeySet.import_key_set(jwks)
            except (JoseError, KeyError, TypeError, ValueError):
                raise OidcError("discovery_failed", "provider keys are not a JWK set") from None
            provider = self._provider = _Provider(metadata, keys, time.monotonic())
        return provider

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document (checked against the configured issuer)."""
        return (await self._load()).metadata

    async def authorization_url(self, flow: Flow) -> str:
        """Where to send the browser: the provider's authorization endpoint for `flow`."""
        metadata = await self.metadata()
        url, _ = self._oauth.create_authorization_url(
            metadata.authorization_endpoint,
            state=flow.state,
            code_verifier=flow.code_verifier,
            nonce=flow.nonce,
        )
        return str(url)

    async def finish(self, flow: Flow, *, code: str) -> VerifiedIdentity:
        """Exchange the code (with the PKCE verifier) and validate the ID token."""
        metadata = await self.metadata()
        tokens = await self._exchange(metadata, flow, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("invalid_id_token", "the provider returned no ID token")
        access_token = tokens.get("access_token")
        claims = await self._validated_claims(id_token, nonce=flow.nonce, access_token=access_token)
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise OidcError("invalid_id_token", "the ID token subject is not usable")
        verified = claims.get("email_verified")
        return VerifiedIdentity(
            issuer=metadata.issuer,
            subject=subject,
            email=_claim_text(claims, "email", 320),
            # Some providers send the boolean as a string.
            email_verified=verified is True or verified == "true",
            name=_claim_text(claims, "name", 200),
        )

    async def _exchange(self, metadata: ProviderMetadata, flow: Flow, code: str) -> dict[str, Any]:
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=flow.code_verifier,
        )
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        # A client without a secret is a public client: PKCE alone binds the code to it.
        method = metadata.token_auth_method if self._has_secret else "none"
        url, headers, body = self._oauth.client_auth(method).prepare(
            "POST", metadata.token_endpoint, headers, body
        )
        try:
            async with self._http() as client:
                response = await client.post(str(url), headers=headers, content=body)
            payload = response.json()
        except (httpx.HTTPError, ValueError):
            raise OidcError("token_exchange_failed", "the token endpoint did not answer") from None
        if response.status_code != 200 or not isinstance(payload, dict):
            error = payload.get("error") if isinstance(payload, dict) else None
            raise OidcError(
                "token_exchange_failed",
                f"the provider refused the code ({str(error or response.status_code)[:64]})",
            )
        return payload

    async def _validated_claims(
        self, id_token: str, *, nonce: str, access_token: object
    ) -> dict[str, Any]:
        provider = await self._load()
        try:
            try:
                token = jwt.decode(id_token, provider.keys, algorithms=provider.metadata.algorithms)
            except InvalidKeyIdError:
                # An unknown key id: the provider may have rotated its keys since we looked.
                provider = await self._load(refresh=True)
                token = jwt.decode(id_token, provider.keys, algorithms=provider.metadata.algorithms)
            claims = CodeIDToken(
                token.claims,
                token.header,
                {
                    "iss": {"essential": True, "value": provider.metadata.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                    "sub": {"essential": True},
                    "exp": {"essential": True},
                    "iat": {"essential": True},
                    "nonce": {"essential": True, "value": nonce},
                },
                {
                    "nonce": nonce,
                    "client_id": self.client_id,
                    "access_token": access_token if isinstance(access_token, str) else None,
                },
            )
            claims.validate(leeway=ID_TOKEN_LEEWAY_S)
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError(
                "invalid_id_token", f"ID token rejected: {type(exc).__name__}"
            ) from None
        return dict(claims)
