"""`Idempotency-Key` on every POST under /api/v1: a repeat replays the first response.

A pure ASGI middleware inside the edge layer (so body caps and request ids already apply).
For a POST carrying the header and a credential it:

1. scopes the key to the credential — the SHA-256 digest of the bearer token, else of the
   session cookie, computed without a database lookup (requests without either pass
   through untouched: they are answered 401 anyway);
2. reads the whole body (capped by the edge) and fingerprints method, path, query string
   and body, then hands the same bytes to the app;
3. claims the key in a short transaction of its own (idempotency/store.py). If another
   request holds it: a different fingerprint is 409 `idempotency_key_reused`, a stored
   response is replayed with `Idempotent-Replayed: true`, and a request still running is
   409 `idempotency_request_in_progress` — so concurrent requests with one key cause one
   effect;
4. holds the app's response until it is complete, stores it (encrypted, see
   idempotency/responses.py) or releases the key, and only then sends it, so a client
   that has the response and retries always gets the replay.

Kept: every response below 500 except 401 and 429 (idempotency/rules.py `is_kept`).
Released, so the client may retry: 5xx, exceptions, and bodies over 1 MiB (those are
streamed through as they come instead of being held).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from byteor_cloud.api.auth import SESSION_COOKIE, bearer_token
from byteor_cloud.api.errors import error_response
from byteor_cloud.config import Settings
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.core.errors import Unauthenticated
from byteor_cloud.db.session import Database
from byteor_cloud.idempotency import store
from byteor_cloud.idempotency.responses import BOX_PURPOSE, StoredResponse, seal, unseal
from byteor_cloud.idempotency.rules import (
    KEY_HEADER,
    MAX_KEY_CHARS,
    MAX_STORED_BODY_BYTES,
    REPLAYED_HEADER,
    REPLAYED_HEADERS,
    fingerprint,
    is_kept,
    valid_key,
)
from byteor_cloud.identity.tokens import digest

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

Settle = Callable[[StoredResponse | None], Awaitable[None]]


def _applies(scope: Scope) -> bool:
    # Lifespan and websocket scopes have no method or path: check the type first.
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path = str(scope["path"])
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def credential_scope(request: Request) -> str | None:
    """The digest of what authenticates the request, as `api/auth.authenticate` picks it:
    the bearer token first, else the session cookie. Never the raw secret."""
    try:
        token = bearer_token(request)
    except Unauthenticated:
        return None  # a malformed Authorization header: the app answers 401
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
    return digest(token) if token else None


async def _read_body(receive: Receive) -> tuple[list[Message], bool]:
    """Every request message up to the end of the body; False if the client left first.

    The edge counts these bytes against the body cap and aborts past it, before any key
    is claimed."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False
        if not message.get("more_body", False):
            return messages, True


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the app the messages already read, then the live ones (the
    eventual `http.disconnect`)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class _HeldResponse:
    """Holds the app's response until it is complete, settles the claim, then sends it.

    A body growing past `MAX_STORED_BODY_BYTES` (or an ASGI message this layer does not
    buffer) releases the key and is streamed through from then on.
    """

    def __init__(self, send: Send, settle: Settle) -> None:
        self._send = send
        self._settle = settle
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._streaming = False
        self.settled = False

    async def settle(self, kept: StoredResponse | None) -> None:
        if not self.settled:
            self.settled = True
            await self._settle(kept)

    async def send(self, message: Message) -> None:
        if self._streaming:
            await self._send(message)
            return
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] == "http.response.body" and self._start is not None:
            body = bytes(message.get("body", b""))
            self._chunks.append(body)
            self._size += len(body)
            more = bool(message.get("more_body", False))
            if more and self._size <= MAX_STORED_BODY_BYTES:
                return
            fits = not more and self._size <= MAX_STORED_BODY_BYTES
            await self.settle(self._kept() if fits else None)
            await self.flush(more_body=more)
            return
        await self.settle(None)
        await self.flush(more_body=True)
        await self._send(message)

    async def flush(self, *, more_body: bool) -> None:
        """Send what is held and stream whatever follows."""
        self._streaming = True
        if self._start is not None:
            await self._send(self._start)
            self._start = None
            body = b"".join(self._chunks)
            self._chunks = []
            if body or not more_body:
                await self._send(
                    {"type": "http.response.body", "body": body, "more_body": more_body}
                )

    def _kept(self) -> StoredResponse:
        assert self._start is not None
        headers = tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in self._start.get("headers", ())
            if name.decode("latin-1").lower() in REPLAYED_HEADERS
        )
        return StoredResponse(int(self._start["status"]), headers, b"".join(self._chunks))


class IdempotencyMiddleware:
    """See module docstring."""

    def __init__(self, app: ASGIApp, *, database: Database, settings: Settings) -> None:
        self.app = app
        self.database = database
        self._settings = settings
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        # Built on first use: building the app should not read (or, embedded, generate)
        # the master key.
        if self._box is None:
            self._box = SecretBox(self._settings.master_key(), BOX_PURPOSE)
        return self._box

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _applies(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        keys = request.headers.getlist(KEY_HEADER)
        credential = credential_scope(request)
        if not keys or credential is None:
            await self.app(scope, receive, send)
            return
        if len(keys) != 1 or not valid_key(keys[0]):
            response = error_response(
                400,
                "invalid_idempotency_key",
                f"Idempotency-Key must be one header of 1–{MAX_KEY_CHARS} printable "
                "ASCII characters",
            )
            await response(scope, receive, send)
            return
        messages, complete = await _read_body(receive)
        if not complete:
            # The client left mid-body: there is no request to make idempotent.
            await self.app(scope, _replaying(messages, receive), send)
            return
        body = b"".join(bytes(m.get("body", b"")) for m in messages)
        request_hash = fingerprint(scope["method"], scope["path"], scope["query_string"], body)
        async with self.database.transaction() as session:
            outcome = await store.claim(
                session, credential=credential, key=keys[0], request_hash=request_hash, now=utcnow()
            )
        replay_receive = _replaying([{"type": "http.request", "body": body}], receive)
        if isinstance(outcome, store.Found):
            await self._answer_found(outcome, request_hash, scope, replay_receive, send)
        else:
            await self._run_claimed(outcome.record_id, scope, replay_receive, send)

    async def _run_claimed(
        self, record_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        async def settle(kept: StoredResponse | None) -> None:
            await self._settle(record_id, kept)

        held = _HeldResponse(send, settle)
        try:
            await self.app(scope, receive, held.send)
        except BaseException:
            # The exception goes on to the edge (a 500 envelope); the key is freed so the
            # client can retry — even when this task is being cancelled.
            with anyio.CancelScope(shield=True):
                await held.settle(None)
            raise
        if not held.settled:
            # The app returned without finishing its response; pass on what it sent.
            await held.settle(None)
            await held.flush(more_body=True)

    async def _settle(self, record_id: str, kept: StoredResponse | None) -> None:
        """Store a kept response, or release the key. A failure here is logged, not
        raised: the app's effect has happened and the client must still get its answer.
        The claim then stays "in progress" until it is presumed abandoned."""
        try:
            async with self.database.transaction() as session:
                if kept is not None and is_kept(kept.status_code):
                    await store.complete(
                        session,
                        record_id,
                        status_code=kept.status_code,
                        response=seal(self.box, kept),
                        encrypted=True,
                    )
                else:
                    await store.release(session, record_id)
        except Exception:
            log.exception("could not settle an idempotency key", extra={"record_id": record_id})

    async def _answer_found(
        self, found: store.Found, request_hash: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if found.request_hash != request_hash:
            response = error_response(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
        elif found.status_code is None or found.response is None:
            response = error_response(
                409,
                "idempotency_request_in_progress",
                "a request with this Idempotency-Key is still in progress; retry shortly",
                headers={"Retry-After": "1"},
            )
        else:
            try:
                stored = unseal(
                    self.box,
                    found.response,
                    status_code=found.status_code,
                    encrypted=found.encrypted,
                )
            except (ValueError, KeyError, TypeError):
                log.exception("a stored idempotent response could not be read")
                response = error_response(
                    409,
                    "idempotency_replay_unavailable",
                    "the first response to this Idempotency-Key cannot be read any more; "
                    "send the request with a new key",
                )
            else:
                await _replay(stored, send)
                return
        await response(scope, receive, send)


async def _replay(stored: StoredResponse, send: Send) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in stored.headers]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    headers.append((REPLAYED_HEADER.encode(), b"true"))
    await send({"type": "http.response.start", "status": stored.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


def install_idempotency(app: FastAPI, settings: Settings) -> None:
    """Wrap POST routes so a repeated key replays the first response."""
    app.add_middleware(IdempotencyMiddleware, database=app.state.database, settings=settings)
