"""Replays: a repeated key gets the first response, per credential, for 24 hours."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from byteor_cloud.core.clock import utcnow
from byteor_cloud.core.ids import new_id
from byteor_cloud.db.models.idempotency import IdempotencyRecord
from byteor_cloud.db.session import Database
from byteor_cloud.idempotency.rules import ABANDONED_AFTER, fingerprint
from byteor_cloud.identity.tokens import digest
from helpers.identity import TestUser

from .conftest import keyed, org_count, records

ORGS = "/api/v1/orgs"


async def test_a_repeat_replays_the_first_response_and_creates_nothing(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    first = await client.post(ORGS, json={"name": "Acme"}, headers=keyed(alice, "create-acme"))
    again = await client.post(ORGS, json={"name": "Acme"}, headers=keyed(alice, "create-acme"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert await org_count(database) == 1


async def test_a_replayed_secret_is_shown_again_but_stored_encrypted(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    headers = keyed(alice, "new-token")
    first = await client.post("/api/v1/me/tokens", json={"name": "ci"}, headers=headers)
    again = await client.post("/api/v1/me/tokens", json={"name": "ci"}, headers=headers)
    assert first.status_code == again.status_code == 201
    token = first.json()["token"]
    assert again.json()["token"] == token
    [record] = await records(database)
    assert record.encrypted
    assert record.response is not None
    assert token.encode() not in record.response
    assert first.json()["id"].encode() not in record.response  # the whole body is sealed
    assert alice.token not in record.credential  # scoped by digest, never the raw token


async def test_the_same_key_from_another_credential_is_independent(
    client: httpx.AsyncClient, database: Database, alice: TestUser, bob: TestUser
) -> None:
    mine = await client.post(ORGS, json={"name": "Acme"}, headers=keyed(alice, "shared-key"))
    theirs = await client.post(ORGS, json={"name": "Acme"}, headers=keyed(bob, "shared-key"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers
    assert await org_count(database) == 2
    assert len(await records(database)) == 2


async def test_the_same_key_with_another_request_is_409_key_reused(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    headers = keyed(alice, "reused")
    assert (await client.post(ORGS, json={"name": "A"}, headers=headers)).status_code == 201
    other_body = await client.post(ORGS, json={"name": "B"}, headers=headers)
    other_query = await client.post(ORGS + "?x=1", json={"name": "A"}, headers=headers)
    for response in (other_body, other_query):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert await org_count(database) == 1


async def test_a_client_error_is_replayed_too(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    headers = keyed(alice, "bad-body")
    first = await client.post(ORGS, json={"nom": "Acme"}, headers=headers)
    again = await client.post(ORGS, json={"nom": "Acme"}, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.json()["error"] == first.json()["error"]
    assert again.headers["idempotent-replayed"] == "true"


async def test_an_expired_record_is_replaced_not_replayed(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    headers = keyed(alice, "yesterday")
    first = await client.post(ORGS, json={"name": "Acme"}, headers=headers)
    now = utcnow()
    async with database.transaction() as session:
        await session.execute(
            update(IdempotencyRecord).values(
                created_at=now - timedelta(hours=25), expires_at=now - timedelta(hours=1)
            )
        )
    again = await client.post(ORGS, json={"name": "Acme"}, headers=headers)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert await org_count(database) == 2
    [record] = await records(database)
    assert record.expires_at > utcnow()
    third = await client.post(ORGS, json={"name": "Acme"}, headers=headers)
    assert third.json()["id"] == again.json()["id"]


async def _in_progress(database: Database, user: TestUser, key: str, *, age: timedelta) -> None:
    """A claim as a request still running (or dead) since `age` ago leaves it."""
    body = b'{"name":"Acme"}'
    now = utcnow()
    async with database.transaction() as session:
        session.add(
            IdempotencyRecord(
                id=new_id(),
                credential=digest(user.token),
                key=key,
                request_hash=fingerprint("POST", ORGS, b"", body),
                status_code=None,
                response=None,
                encrypted=False,
                created_at=now - age,
                expires_at=now - age + timedelta(hours=24),
            )
        )


async def test_a_request_in_progress_is_409_and_causes_no_effect(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    await _in_progress(database, alice, "running", age=timedelta(seconds=1))
    response = await client.post(
        ORGS,
        content=b'{"name":"Acme"}',
        headers={**keyed(alice, "running"), "content-type": "application/json"},
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_request_in_progress"
    assert response.headers["retry-after"] == "1"
    assert await org_count(database) == 0


async def test_an_abandoned_claim_is_taken_over(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    await _in_progress(database, alice, "crashed", age=ABANDONED_AFTER + timedelta(minutes=1))
    response = await client.post(
        ORGS,
        content=b'{"name":"Acme"}',
        headers={**keyed(alice, "crashed"), "content-type": "application/json"},
    )
    assert response.status_code == 201
    assert await org_count(database) == 1
    [record] = await records(database)
    assert record.status_code == 201


async def test_posts_without_the_header_are_unaffected(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    first = await client.post(ORGS, json={"name": "Acme"}, headers=alice.headers)
    again = await client.post(ORGS, json={"name": "Acme"}, headers=alice.headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] != again.json()["id"]
    assert "idempotent-replayed" not in again.headers
    assert await org_count(database) == 2
    assert await records(database) == []


async def test_requests_without_a_credential_pass_through(
    client: httpx.AsyncClient, database: Database
) -> None:
    for _ in range(2):
        response = await client.post(ORGS, json={"name": "Acme"}, headers={"Idempotency-Key": "k"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    assert await records(database) == []
