"""Browser sessions: a random cookie token of which only the hash is stored.

A session is absolute, not sliding: it ends `SESSION_LIFETIME` after sign-in however
busy it is, so a stolen cookie cannot be kept alive by use. Signing out (or signing in
again in the same browser) revokes the row; a revoked or expired session fails on its
next request, exactly like a revoked token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.core.clock import utcnow
from byteor_cloud.db.models.identity import BrowserSession, User
from byteor_cloud.identity import tokens

# A working day: an operator signs in once per shift, and a cookie left behind on a shared
# machine is dead by the next morning. Long-lived automation uses tokens, not sessions.
SESSION_LIFETIME = timedelta(hours=12)
_ADDRESS_CHARS = 64  # browser_sessions.client_address


@dataclass(frozen=True)
class NewSession:
    record: BrowserSession
    token: str  # the cookie value: shown to the browser once, never stored


@dataclass(frozen=True)
class ActiveSession:
    record: BrowserSession
    user: User


async def start_session(
    session: AsyncSession, *, user: User, client_address: str | None
) -> NewSession:
    """A new session for the user; the token goes into the cookie, its hash into the row."""
    issued = tokens.issue(tokens.TokenKind.session)
    now = utcnow()
    record = BrowserSession(
        user_id=user.id,
        token_hash=issued.digest,
        csrf_secret=secrets.token_hex(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        client_address=client_address[:_ADDRESS_CHARS] if client_address else None,
    )
    session.add(record)
    await session.flush()
    return NewSession(record, issued.plaintext)


async def find_active_session(session: AsyncSession, token: str) -> ActiveSession | None:
    """The live session behind a cookie value and its (active) user; None otherwise."""
    if tokens.kind_of(token) is not tokens.TokenKind.session or len(token) > 128:
        return None
    row = await session.execute(
        select(BrowserSession, User)
        .join(User, User.id == BrowserSession.user_id)
        .where(BrowserSession.token_hash == tokens.digest(token))
    )
    found = row.first()
    if found is None:
        return None
    record, user = found
    if not tokens.matches(token, record.token_hash):
        return None
    if record.revoked_at is not None or record.expires_at <= utcnow() or not user.is_active:
        return None
    return ActiveSession(record, user)


async def end_session(session: AsyncSession, record: BrowserSession) -> None:
    """Revoke the session (idempotent)."""
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        await session.flush()
