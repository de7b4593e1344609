"""Signing a person in (local password or OIDC) and out, with the identity events.

Every outcome goes to the instance security log in the caller's transaction:
`identity.sign_in` (details: method, user id), `identity.sign_out`, and
`auth.sign_in_failed` (method and a reason code; the user id when the account is known).
Passwords, codes, tokens and what was typed into the form never reach the log.

OIDC accounts are matched by issuer + subject (`UserIdentity`). On the first sign-in of a
subject the email claim decides, and only an email the provider vouches for
(`email_verified` true) is trusted: it links the subject to the existing user with that
email, or creates the user. An unverified email is refused in both cases, because the
product addresses people by email (members are added by email): accepting one would let
anyone able to put that address on an account at the provider take over, or pre-empt,
the person it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.core.errors import InvalidInput
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.db.models.identity import User, UserIdentity
from byteor_cloud.identity import sessions
from byteor_cloud.identity.oidc import VerifiedIdentity
from byteor_cloud.identity.passwords import MAX_LENGTH, verify_password
from byteor_cloud.identity.service import find_user_by_email, normalise_email, principal_for_user

LOCAL = "local"
OIDC = "oidc"


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: sessions.NewSession

    @property
    def principal(self) -> Principal:
        return principal_for_user(self.user, CredentialKind.session, self.session.record.id)


@dataclass(frozen=True)
class Refused:
    """A sign-in that did not happen; `reason` is a stable code (logged, never shown)."""

    reason: str


async def record_failure(
    session: AsyncSession,
    *,
    method: str,
    reason: str,
    client_address: str | None,
    user_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> Refused:
    """Log a failed sign-in to the instance security log."""
    await audit.security_event(
        session,
        "auth.sign_in_failed",
        client_address=client_address,
        details={
            "method": method,
            "reason": reason,
            **({"user_id": user_id} if user_id else {}),
            **(details or {}),
        },
    )
    return Refused(reason)


async def _signed_in(
    session: AsyncSession,
    user: User,
    *,
    method: str,
    client_address: str | None,
    replacing: str | None,
    details: dict[str, Any] | None = None,
) -> SignedIn:
    if replacing:
        # The browser already held a session: signing in again ends it.
        previous = await sessions.find_active_session(session, replacing)
        if previous is not None:
            await sessions.end_session(session, previous.record)
    new = await sessions.start_session(session, user=user, client_address=client_address)
    result = SignedIn(user, new)
    await audit.security_event(
        session,
        "identity.sign_in",
        principal=result.principal,
        client_address=client_address,
        details={"method": method, "user_id": user.id, **(details or {})},
    )
    return result


async def _user_for_email(session: AsyncSession, email: str) -> User | None:
    try:
        return await find_user_by_email(session, email)
    except InvalidInput:
        return None


async def password_sign_in(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    client_address: str | None,
    replacing: str | None = None,
) -> SignedIn | Refused:
    """Check an email and password; one answer for an unknown email and a wrong password.

    The argon2 check runs whether or not the user exists (against a dummy hash if not),
    so the two failures also take the same time. `replacing` is the session token the
    browser already holds, ended on success.
    """
    user = await _user_for_email(session, email) if len(email) <= 320 else None
    usable = len(password) <= MAX_LENGTH
    matched = verify_password(password if usable else "", user.password_hash if user else None)
    if user is None or not (usable and matched):
        return await record_failure(
            session,
            method=LOCAL,
            reason="invalid_credentials",
            client_address=client_address,
            user_id=user.id if user else None,
        )
    if not user.is_active:
        return await record_failure(
            session,
            method=LOCAL,
            reason="user_inactive",
            client_address=client_address,
            user_id=user.id,
        )
    return await _signed_in(
        session, user, method=LOCAL, client_address=client_address, replacing=replacing
    )


async def oidc_sign_in(
    session: AsyncSession,
    *,
    identity: VerifiedIdentity,
    client_address: str | None,
    replacing: str | None = None,
) -> SignedIn | Refused:
    """Sign in the user linked to the provider subject, linking or creating on first use."""
    who = {"issuer": identity.issuer, "subject": identity.subject}
    link = await session.scalar(
        select(UserIdentity).where(
            UserIdentity.issuer == identity.issuer, UserIdentity.subject == identity.subject
        )
    )
    if link is not None:
        user = await session.get(User, link.user_id)
        if user is None or not user.is_active:
            return await record_failure(
                session,
                method=OIDC,
                reason="user_inactive",
                client_address=client_address,
                user_id=link.user_id,
                details=who,
            )
        return await _signed_in(
            session, user, method=OIDC, client_address=client_address, replacing=replacing
        )
    return await _first_sign_in(session, identity, client_address, replacing, who)


async def _first_sign_in(
    session: AsyncSession,
    identity: VerifiedIdentity,
    client_address: str | None,
    replacing: str | None,
    who: dict[str, str],
) -> SignedIn | Refused:
    try:
        email = normalise_email(identity.email or "")
    except InvalidInput:
        return await record_failure(
            session, method=OIDC, reason="email_missing", client_address=client_address, details=who
        )
    user = await find_user_by_email(session, email)
    if not identity.email_verified:
        return await record_failure(
            session,
            method=OIDC,
            reason="email_not_verified",
            client_address=client_address,
            user_id=user.id if user else None,
            details=who,
        )
    if user is not None and not user.is_active:
        return await record_failure(
            session,
            method=OIDC,
            reason="user_inactive",
            client_address=client_address,
            user_id=user.id,
            details=who,
        )
    created = user is None
    if user is None:
        user = User(email=email, display_name=identity.name or email)
        session.add(user)
        await session.flush()
    session.add(UserIdentity(user_id=user.id, issuer=identity.issuer, subject=identity.subject))
    await session.flush()
    return await _signed_in(
        session,
        user,
        method=OIDC,
        client_address=client_address,
        replacing=replacing,
        details={"created": created, "linked": not created, **who},
    )


async def sign_out(
    session: AsyncSession, active: sessions.ActiveSession, *, client_address: str | None
) -> None:
    """Revoke the browser session and log it."""
    await sessions.end_session(session, active.record)
    await audit.security_event(
        session,
        "identity.sign_out",
        principal=principal_for_user(active.user, CredentialKind.session, active.record.id),
        client_address=client_address,
        details={"user_id": active.user.id},
    )
