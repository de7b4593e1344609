"""Users, personal access tokens, and authenticating a bearer credential."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.errors import InvalidInput, NotFound, Unauthenticated
from byteor_cloud.core.ids import is_id
from byteor_cloud.core.pagination import Page, PageRequest
from byteor_cloud.core.permissions import Role
from byteor_cloud.core.principal import CredentialKind, Principal
from byteor_cloud.db.models.identity import PersonalAccessToken, User
from byteor_cloud.db.models.tenancy import ApiKey, OrgMembership, ProjectMembership
from byteor_cloud.db.pagination import paginate
from byteor_cloud.identity import tokens
from byteor_cloud.identity.passwords import hash_password

DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
MAX_TOKEN_LIFETIME = timedelta(days=366)
# last_used_at is refreshed at most this often, so authentication rarely writes.
LAST_USED_GRANULARITY = timedelta(minutes=5)


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidInput(
            "not a valid email address", code="invalid_email", details={"field": "email"}
        )
    return email


def principal_for_user(user: User, kind: CredentialKind, credential_id: str) -> Principal:
    return Principal(
        credential_kind=kind,
        credential_id=credential_id,
        user_id=user.id,
        name=user.email,
        is_instance_admin=user.is_instance_admin,
    )


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalise_email(email)))


async def ensure_user(
    session: AsyncSession,
    *,
    email: str,
    password: str | None = None,
    instance_admin: bool = False,
) -> tuple[User, bool]:
    """Create the user, or find it (granting instance admin when asked); (user, created).

    A password given for an existing user replaces the old one: re-running the bootstrap
    command is how an operator with shell access resets a lost password.
    """
    user = await find_user_by_email(session, email)
    created = user is None
    if user is None:
        user = User(email=normalise_email(email), display_name=normalise_email(email))
        session.add(user)
    if password is not None:
        user.password_hash = hash_password(password)
    if instance_admin:
        user.is_instance_admin = True
    await session.flush()
    return user, created


def token_expiry(expires_at: datetime | None) -> datetime:
    """The expiry of a new credential: the default lifetime, or the asked one if allowed."""
    now = utcnow()
    if expires_at is None:
        return now + DEFAULT_TOKEN_LIFETIME
    if expires_at <= now:
        raise InvalidInput(
            "expires_at must be in the future",
            code="invalid_expiry",
            details={"field": "expires_at"},
        )
    if expires_at - now > MAX_TOKEN_LIFETIME:
        raise InvalidInput(
            "expires_at may be at most 366 days ahead",
            code="invalid_expiry",
            details={"field": "expires_at"},
        )
    return expires_at


@dataclass(frozen=True)
class NewToken:
    record: PersonalAccessToken
    plaintext: str


async def get_user(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id) if is_id(user_id) else None
    if user is None:
        raise NotFound("user not found", code="user_not_found")
    return user


async def create_personal_access_token(
    session: AsyncSession,
    actor: Principal | None,
    *,
    user_id: str,
    name: str,
    expires_at: datetime | None = None,
) -> NewToken:
    """A new PAT for the user; the plaintext is returned once and never stored.

    Token events are identity events of a person, not of an org, so they go to the
    instance log (an org's chain only holds what happens in that org).
    """
    issued = tokens.issue(tokens.TokenKind.personal_access_token)
    record = PersonalAccessToken(
        user_id=user_id,
        name=name,
        token_prefix=issued.display_prefix,
        token_hash=issued.digest,
        expires_at=token_expiry(expires_at),
    )
    session.add(record)
    await session.flush()
    await audit.security_event(
        session,
        "identity.token.create",
        principal=actor,
        details={"token_id": record.id, "user_id": user_id, "token_prefix": record.token_prefix},
    )
    return NewToken(record, issued.plaintext)


async def list_personal_access_tokens(
    session: AsyncSession, *, user_id: str, page: PageRequest
) -> Page[PersonalAccessToken]:
    statement = select(PersonalAccessToken).where(PersonalAccessToken.user_id == user_id)
    return await paginate(
        session, statement, sort_key=[PersonalAccessToken.id], page=page, descending=True
    )


async def revoke_personal_access_token(
    session: AsyncSession, actor: Principal, *, user_id: str, token_id: str
) -> PersonalAccessToken:
    record = await session.get(PersonalAccessToken, token_id) if is_id(token_id) else None
    if record is None or record.user_id != user_id:
        raise NotFound("token not found", code="token_not_found")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        await audit.security_event(
            session,
            "identity.token.revoke",
            principal=actor,
            details={"token_id": record.id, "user_id": user_id},
        )
    return record


def _usable(revoked_at: datetime | None, expires_at: datetime | None) -> bool:
    now = utcnow()
    return revoked_at is None and (expires_at is None or expires_at > now)


def _touch(record: PersonalAccessToken | ApiKey) -> None:
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_GRANULARITY:
        record.last_used_at = now


INVALID = "invalid, expired or revoked credential"


async def authenticate_bearer(session: AsyncSession, token: str) -> Principal:
    """The principal behind a PAT or org API key; Unauthenticated otherwise."""
    kind = tokens.kind_of(token)
    if kind is tokens.TokenKind.personal_access_token:
        return await _authenticate_pat(session, token)
    if kind is tokens.TokenKind.org_api_key:
        return await _authenticate_api_key(session, token)
    raise Unauthenticated(INVALID, code="invalid_credential")


async def _authenticate_pat(session: AsyncSession, token: str) -> Principal:
    record = await session.scalar(
        select(PersonalAccessToken).where(PersonalAccessToken.token_hash == tokens.digest(token))
    )
    if record is None or not tokens.matches(token, record.token_hash):
        raise Unauthenticated(INVALID, code="invalid_credential")
    user = await session.get(User, record.user_id)
    if user is None or not user.is_active or not _usable(record.revoked_at, record.expires_at):
        raise Unauthenticated(INVALID, code="invalid_credential")
    _touch(record)
    return principal_for_user(user, CredentialKind.personal_access_token, record.id)


async def _authenticate_api_key(session: AsyncSession, token: str) -> Principal:
    key = await session.scalar(select(ApiKey).where(ApiKey.token_hash == tokens.digest(token)))
    if key is None or not tokens.matches(token, key.token_hash):
        raise Unauthenticated(INVALID, code="invalid_credential")
    creator = await session.get(User, key.created_by)
    if creator is None or not creator.is_active or not _usable(key.revoked_at, key.expires_at):
        raise Unauthenticated(INVALID, code="invalid_credential")
    if not await _still_member(session, creator.id, key.org_id):
        # A key acts for its creator; it dies with the creator's membership of the org.
        raise Unauthenticated(INVALID, code="invalid_credential")
    _touch(key)
    return Principal(
        credential_kind=CredentialKind.org_api_key,
        credential_id=key.id,
        user_id=creator.id,
        name=f"{key.name} (API key of {creator.email})",
        api_key_org_id=key.org_id,
        api_key_project_id=key.project_id,
        api_key_role=Role(key.role),
    )


async def _still_member(session: AsyncSession, user_id: str, org_id: str) -> bool:
    org = await session.scalar(
        select(OrgMembership.id).where(
            OrgMembership.org_id == org_id, OrgMembership.user_id == user_id
        )
    )
    if org is not None:
        return True
    project = await session.scalar(
        select(ProjectMembership.id)
        .where(ProjectMembership.org_id == org_id, ProjectMembership.user_id == user_id)
        .limit(1)
    )
    return project is not None
