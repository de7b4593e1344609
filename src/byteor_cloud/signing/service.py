"""Org signing keys: issue, rotate, promote, retire (all audited), publish, sign, verify.

Every change to an org's keys first locks the org (`repository.lock_org`), so rotations,
retirements and the sweep never interleave inside one org; the partial unique indexes on
`signing_keys` back that up at the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from byteor_cloud.audit import service as audit
from byteor_cloud.audit.service import AuditTarget
from byteor_cloud.core.clock import rfc3339, utcnow
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.core.errors import Conflict, InvalidState, NotFound
from byteor_cloud.core.principal import SYSTEM, Principal
from byteor_cloud.core.scope import Scope
from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.signing import keys, repository, rules
from byteor_cloud.signing.keys import verify as verify  # re-exported: the service's helper
from byteor_cloud.signing.rules import PUBLISHED, RETIRING_GRACE, KeyEvent, KeyStatus, next_status

RESOURCE_TYPE = "signing_key"


def _target(key: SigningKey) -> AuditTarget:
    return AuditTarget(key.org_id, RESOURCE_TYPE, key.id)


def _times(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


def _new_key(
    org_id: str, box: SecretBox, *, status: KeyStatus, activate_at: datetime
) -> SigningKey:
    pair = keys.generate(box)
    return SigningKey(
        org_id=org_id,
        alg=keys.ALG,
        public_key=pair.public_key,
        private_key_encrypted=pair.private_key_encrypted,
        status=status.value,
        activate_at=activate_at,
    )


async def _record_created(session: AsyncSession, principal: Principal, key: SigningKey) -> None:
    await audit.record(
        session,
        principal,
        "signing_key.create",
        _target(key),
        details={
            "kid": key.id,
            "alg": key.alg,
            "status": key.status,
            "activate_at": _times(key.activate_at),
        },
    )


async def issue_initial_key(
    session: AsyncSession, principal: Principal, *, org_id: str, box: SecretBox
) -> SigningKey:
    """The first key of a new org, active at once (call after the org's chain started)."""
    key = _new_key(org_id, box, status=KeyStatus.active, activate_at=utcnow())
    session.add(key)
    await session.flush()
    await _record_created(session, principal, key)
    return key


async def list_keys(session: AsyncSession, scope: Scope) -> list[SigningKey]:
    """The org's published keys (next, active, retiring), by kid."""
    return list(await repository.keys_of(session, scope.org_id, PUBLISHED))


async def rotate(
    session: AsyncSession,
    scope: Scope,
    *,
    box: SecretBox,
    activate_now: bool = False,
    activation_delay: timedelta | None = None,
) -> SigningKey:
    """Publish a new `next` key; the sweep makes it active after the activation delay
    (three of the org's longest heartbeat intervals, see `rules.activation_delay`), or it
    becomes active in this transaction when `activate_now`."""
    org_id = scope.org_id
    await repository.lock_org(session, org_id)
    pending = await repository.keys_of(session, org_id, [KeyStatus.next])
    if pending:
        raise Conflict(
            "a rotation is already pending; wait for it or retire the next key first",
            code="rotation_pending",
            details={"kid": pending[0].id, "activate_at": _times(pending[0].activate_at)},
        )
    now = utcnow()
    if activate_now:
        delay = timedelta(0)
    elif activation_delay is not None:
        delay = activation_delay
    else:
        longest = await repository.longest_heartbeat_interval_s(session, org_id)
        delay = rules.activation_delay(longest)
    key = _new_key(org_id, box, status=KeyStatus.next, activate_at=now + delay)
    session.add(key)
    await session.flush()
    await _record_created(session, scope.principal, key)
    if activate_now:
        await _promote(session, scope.principal, key, now=now)
    return key


async def _promote(
    session: AsyncSession, principal: Principal, key: SigningKey, *, now: datetime
) -> None:
    """Make `key` the org's active key; the current one starts its grace period."""
    new_status = next_status(KeyStatus(key.status), KeyEvent.activate)
    previous = await repository.active_key(session, key.org_id)
    if previous is not None:
        previous.status = next_status(KeyStatus.active, KeyEvent.supersede).value
        previous.not_after = now + RETIRING_GRACE
        # Flushed on its own: the one-active-key index must never see two at once.
        await session.flush()
    key.status = new_status.value
    key.activate_at = now
    await session.flush()
    await audit.record(
        session,
        principal,
        "signing_key.activate",
        _target(key),
        details={
            "kid": key.id,
            "previous_kid": previous.id if previous else None,
            "previous_not_after": _times(previous.not_after) if previous else None,
        },
    )


async def _retire(
    session: AsyncSession,
    principal: Principal,
    key: SigningKey,
    event: KeyEvent,
    *,
    now: datetime,
) -> None:
    before = key.status
    key.status = next_status(KeyStatus(key.status), event).value
    key.retired_at = now
    await session.flush()
    await audit.record(
        session,
        principal,
        "signing_key.retire",
        _target(key),
        details={"kid": key.id, "from": before, "reason": event.value},
    )


async def retire(session: AsyncSession, scope: Scope, *, kid: str) -> SigningKey:
    """Retire a `next` key (cancelling its rotation) or a `retiring` one (ending its grace
    period early); the active key cannot be retired (409 `active_key_required`)."""
    await repository.lock_org(session, scope.org_id)
    key = await repository.get(session, scope.org_id, kid)
    if key is None:
        raise NotFound("no such signing key", code="signing_key_not_found")
    await _retire(session, scope.principal, key, KeyEvent.retire, now=utcnow())
    return key


async def orgs_with_due_keys(session: AsyncSession, *, now: datetime) -> list[str]:
    """Orgs the sweep has work for at `now`."""
    return await repository.orgs_with_due_keys(session, now=now)


async def apply_due_transitions(session: AsyncSession, *, org_id: str, now: datetime) -> int:
    """Promote the org's due `next` key and retire its expired `retiring` keys (audited as
    the system); re-read under the org lock, so a repeated or raced sweep does nothing twice.
    Returns how many keys changed."""
    await repository.lock_org(session, org_id)
    changed = 0
    for key in await repository.keys_of(session, org_id, [KeyStatus.next, KeyStatus.retiring]):
        event = rules.due_event(
            KeyStatus(key.status), activate_at=key.activate_at, not_after=key.not_after, now=now
        )
        if event is KeyEvent.activate:
            await _promote(session, SYSTEM, key, now=now)
            changed += 1
        elif event is KeyEvent.expire:
            await _retire(session, SYSTEM, key, event, now=now)
            changed += 1
    return changed


def document_entry(key: SigningKey) -> dict[str, Any]:
    """One key as the signing-keys document shows it (PRODUCT.md §9)."""
    return entry_of(
        kid=key.id,
        alg=key.alg,
        public_key=key.public_key,
        status=key.status,
        not_after=key.not_after,
    )


def entry_of(
    *, kid: str, alg: str, public_key: str, status: str, not_after: datetime | None
) -> dict[str, Any]:
    """A document entry from the key's columns (for callers reading them with Core)."""
    return {
        "kid": kid,
        "alg": alg,
        "public_key": public_key,
        "status": status,
        "not_after": _times(not_after),
    }


async def signing_keys_document(session: AsyncSession, org_id: str) -> dict[str, Any]:
    """`{"keys": [...]}`: the org's non-retired keys, by kid; what agents trust."""
    return {
        "keys": [
            document_entry(key) for key in await repository.keys_of(session, org_id, PUBLISHED)
        ]
    }


async def sign(
    session: AsyncSession, *, org_id: str, payload: bytes, box: SecretBox
) -> tuple[str, str]:
    """Sign `payload` with the org's active key: `(kid, base64url signature)`."""
    key = await repository.active_key(session, org_id)
    if key is None:
        # Every org gets a key at creation and the migration backfilled older ones.
        raise InvalidState("the organization has no active signing key", code="no_signing_key")
    return key.id, keys.sign_sealed(key.private_key_encrypted, box, payload)
