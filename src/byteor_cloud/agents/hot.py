"""The two requests thousands of agents make all day, at the cost of one or two statements:
a steady heartbeat (an online agent beating again) and a desired-state poll that finds
nothing changed (304).

Everything else — a first beat, an agent coming back online, a changed desired state, and
every refusal — is answered by the documented routes (`api/v1/agent_runtime.py`) through
`agents.runtime`: here a request either succeeds plainly or `None` says "let the route
answer it", so statuses, error codes and audit have one implementation.

Nothing about a credential is cached: each request reads the key, its agent and the org's
published signing keys in one statement, so a deleted agent or a revoked, rotated-out or
expired key fails on its very next request. What is memoised is pure arithmetic on what
that statement returns: the parsed scope list, and the desired-state ETag, keyed by the
exact column values it is computed from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Text,
    any_,
    bindparam,
    cast,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from byteor_cloud.agents import runtime
from byteor_cloud.agents.rules import AgentScope, AgentStatus
from byteor_cloud.core.clock import utcnow
from byteor_cloud.db.hotpath import HotConnection, HotRows
from byteor_cloud.db.models.agents import Agent, AgentKey
from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.db.models.tenancy import Environment
from byteor_cloud.db.session import Database
from byteor_cloud.identity import tokens

# The credential as the routes check it (`runtime.authenticate_agent`), keyed by the key's
# digest. JSON columns come back as their text (the same text for the same value on each
# database), which keys the memos. Expiry is checked in Python rather than in SQL: a key
# has none until it is rotated out, so the usual check is `is None`, with no time to bind.
_CREDENTIAL_COLUMNS = (
    AgentKey.token_hash,
    Agent.id,
    AgentKey.expires_at,
    cast(AgentKey.scopes, Text),
    Agent.status,
    Environment.heartbeat_interval_s,
    cast(Agent.assignment, Text),
    SigningKey.id,
    SigningKey.alg,
    SigningKey.public_key,
    SigningKey.status,
    SigningKey.not_after,
)
# Column positions: the credential's, then the signing key's five from `_FIRST_KEY_COLUMN`.
(
    _TOKEN_HASH,
    _AGENT_ID,
    _EXPIRES_AT,
    _SCOPES,
    _STATUS,
    _INTERVAL,
    _ASSIGNMENT,
    _FIRST_KEY_COLUMN,
) = range(8)
_NOT_AFTER = _FIRST_KEY_COLUMN + 4


def _credentials_where(criterion: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    return (
        runtime.credential_query(*_CREDENTIAL_COLUMNS)
        .where(criterion)
        .order_by(AgentKey.token_hash, SigningKey.id)
    )


# SQLite: one key per statement (a local read of a few microseconds).
_CREDENTIAL = _credentials_where(AgentKey.token_hash == bindparam("token_hash"))
# PostgreSQL: the keys of every request asking at the same moment, in one round trip
# (`Database.fetch_coalesced`); the first column is the key.
_CREDENTIALS = _credentials_where(
    AgentKey.token_hash == any_(bindparam("keys", type_=ARRAY(String)))
)

_AGENT_KEY_PREFIX = tokens.TokenKind.agent_key.value


@dataclass(frozen=True)
class SteadyAgent:
    """An authenticated agent, as the hot path needs it."""

    status: AgentStatus
    heartbeat_interval_s: int
    desired_state_etag: str


async def steady_agent(
    database: Database, token_digest: str, *, agent_id: str, scope: AgentScope
) -> SteadyAgent | None:
    """The agent behind the key with that digest when it may make this call, else `None`
    (unknown, expired or deleted key, another agent's path, a missing scope: the route
    says which). One statement, shared on PostgreSQL with the lookups of the same moment;
    raises `HotPathBusy` when it cannot run without waiting."""
    if database.is_sqlite:
        async with database.hot() as hot:
            found = await hot.fetch(_CREDENTIAL, {"token_hash": token_digest})
    else:
        found = await database.coalesced(_read_credentials, token_digest)
    if not found.rows:
        return None
    first = found.rows[0]
    if first[_AGENT_ID] != agent_id:
        return None
    expires_at = first[_EXPIRES_AT]
    if expires_at is not None and found.convert(_EXPIRES_AT, expires_at) <= utcnow():
        return None
    if scope.value not in _scopes(first[_SCOPES]):
        return None
    return SteadyAgent(
        status=AgentStatus(first[_STATUS]),
        heartbeat_interval_s=first[_INTERVAL],
        desired_state_etag=_desired_state_etag(found),
    )


async def _read_credentials(hot: HotConnection, keys: dict[str, None]) -> dict[str, HotRows]:
    found = await hot.fetch(_CREDENTIALS, {"keys": list(keys)})
    rows: dict[str, list[tuple[Any, ...]]] = {key: [] for key in keys}
    for row in found.rows:
        rows[row[_TOKEN_HASH]].append(row)
    return {key: HotRows(key_rows, found.results) for key, key_rows in rows.items()}


def is_agent_key(token: str) -> bool:
    return token.startswith(_AGENT_KEY_PREFIX)


async def record_steady_beat(database: Database, agent_id: str, beat: dict[str, Any]) -> bool:
    """The beat of an agent that is online: one UPDATE of its row, conditional on it still
    being online. False when it did not apply (the sweep just marked it offline, or it was
    deleted): the route's transactional path then takes the beat and audits the change."""
    values = runtime.steady_values(beat)
    if not database.is_sqlite:
        return bool(await database.coalesced(_record_beats, agent_id, values))
    async with database.hot() as hot:
        updated = await hot.write(
            runtime.steady_update(frozenset(values)), {**values, "agent_id": agent_id}
        )
    return updated == 1


# PostgreSQL: the steady beats of every agent beating at the same moment, in one UPDATE
# (one round trip, one commit). Each reported column travels as JSON text, SQL NULL when
# the beat left it out (the column keeps its value); JSON `null` clears it, as the ORM
# stores None. `RETURNING` names the agents that were still online.
_STEADY_BEATS = text(
    """
    UPDATE agents SET
        status = :online,
        last_heartbeat_at = beats.at,
        agent_version = CASE WHEN beats.agent_version IS NULL THEN agents.agent_version
                        ELSE CAST(beats.agent_version AS jsonb) #>> '{}' END,
        health = CASE WHEN beats.health IS NULL THEN agents.health
                 ELSE CAST(beats.health AS jsonb) #>> '{}' END,
        running = CASE WHEN beats.running IS NULL THEN agents.running
                  ELSE CAST(beats.running AS jsonb) END,
        tuning = CASE WHEN beats.tuning IS NULL THEN agents.tuning
                 ELSE CAST(beats.tuning AS jsonb) END,
        metrics = CASE WHEN beats.metrics IS NULL THEN agents.metrics
                  ELSE CAST(beats.metrics AS jsonb) END
    FROM unnest(
        CAST(:ids AS text[]), CAST(:ats AS timestamptz[]), CAST(:agent_version AS text[]),
        CAST(:health AS text[]), CAST(:running AS text[]), CAST(:tuning AS text[]),
        CAST(:metrics AS text[])
    ) AS beats(id, at, agent_version, health, running, tuning, metrics)
    WHERE agents.id = beats.id AND agents.status = :online
    RETURNING agents.id
    """
)
# The statement above names every column a beat can write; a new one must be added there.
_BEAT_COLUMNS = tuple(runtime.BEAT_COLUMNS.values())
assert set(_BEAT_COLUMNS) == {"agent_version", "health", "running", "tuning", "metrics"}


async def _record_beats(hot: HotConnection, beats: dict[str, dict[str, Any]]) -> dict[str, bool]:
    params: dict[str, Any] = {
        "online": AgentStatus.online.value,
        "ids": list(beats),
        "ats": [values["last_heartbeat_at"] for values in beats.values()],
    }
    for column in _BEAT_COLUMNS:
        params[column] = [
            json.dumps(values[column]) if column in values else None for values in beats.values()
        ]
    updated = await hot.fetch(_STEADY_BEATS, params)
    return {row[0]: True for row in updated.rows}


# Memos of pure functions of column values -----------------------------------------------

_MEMO_SIZE = 4096
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _memoised(memo: dict[K, V], key: K, compute: Callable[[], V]) -> V:
    value = memo.get(key)
    if value is None:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()  # rare (distinct inputs only): a bound, not a policy
        value = memo[key] = compute()
    return value


_scope_memo: dict[str, frozenset[str]] = {}
_etag_memo: dict[tuple[Any, ...], str] = {}


def _scopes(raw: str) -> frozenset[str]:
    return _memoised(_scope_memo, raw, lambda: frozenset(json.loads(raw)))


def _desired_state_etag(found: HotRows) -> str:
    """`runtime.state_etag(runtime.desired_state(...))` of what the credential read
    returned: the assignment's JSON text and every signing-key column."""
    rows = found.rows
    key = (rows[0][_ASSIGNMENT], *(row[_FIRST_KEY_COLUMN:] for row in rows))

    def compute() -> str:
        raw_assignment = rows[0][_ASSIGNMENT]
        assignment = json.loads(raw_assignment) if raw_assignment is not None else None
        keys = runtime.keys_document(
            (*row[_FIRST_KEY_COLUMN:_NOT_AFTER], found.convert(_NOT_AFTER, row[_NOT_AFTER]))
            for row in rows
        )
        return runtime.state_etag(runtime.desired_state_of(assignment, keys))

    return _memoised(_etag_memo, key, compute)
