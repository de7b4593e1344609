"""What is not kept: failures free the key, so the client can retry; bad keys are 400."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from byteor_cloud.api.app import create_app
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase
from helpers.identity import TestUser

from .conftest import PROBE, STREAM_CHUNK, STREAM_CHUNKS, keyed, org_count, records


async def test_a_crash_leaves_no_record_and_the_retry_runs_again(
    client: httpx.AsyncClient, app: FastAPI, database: Database, alice: TestUser
) -> None:
    for attempt in (1, 2):
        response = await client.post(f"{PROBE}/crash", json={}, headers=keyed(alice, "crash"))
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
        assert app.state.probe_calls["crash"] == attempt
        assert await records(database) == []


async def test_a_5xx_answer_leaves_no_record(
    client: httpx.AsyncClient, app: FastAPI, database: Database, alice: TestUser
) -> None:
    for attempt in (1, 2):
        response = await client.post(f"{PROBE}/unavailable", json={}, headers=keyed(alice, "503"))
        assert response.status_code == 503
        assert "idempotent-replayed" not in response.headers
        assert app.state.probe_calls["unavailable"] == attempt
    assert await records(database) == []


async def test_a_large_streamed_response_is_passed_on_but_not_kept(
    client: httpx.AsyncClient, app: FastAPI, database: Database, alice: TestUser
) -> None:
    for attempt in (1, 2):
        response = await client.post(f"{PROBE}/stream", json={}, headers=keyed(alice, "big"))
        assert response.status_code == 200
        assert response.content == STREAM_CHUNK * STREAM_CHUNKS
        assert "idempotent-replayed" not in response.headers
        assert app.state.probe_calls["stream"] == attempt
    assert await records(database) == []


async def test_an_unaccepted_credential_leaves_no_record(
    client: httpx.AsyncClient, database: Database
) -> None:
    headers = {"Authorization": "Bearer bc_pat_not-a-real-token", "Idempotency-Key": "k"}
    response = await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=headers)
    assert response.status_code == 401
    assert await records(database) == []


async def test_a_rate_limited_request_leaves_no_record(
    test_db: TestDatabase, database: Database, alice: TestUser
) -> None:
    app = create_app(test_db.settings(rate_limit_people_per_min=1), database=database)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        allowed = await client.post("/api/v1/orgs", json={"name": "A"}, headers=keyed(alice, "1"))
        limited = await client.post("/api/v1/orgs", json={"name": "B"}, headers=keyed(alice, "2"))
    assert (allowed.status_code, limited.status_code) == (201, 429)
    assert [record.key for record in await records(database)] == ["1"]
    assert await org_count(database) == 1


@pytest.mark.parametrize(
    "key",
    [b"", b" ", b"k" * 256, "clé".encode(), b"tab\there", b"line\x7f"],
    ids=["empty", "blank", "too-long", "non-ascii", "control", "delete"],
)
async def test_an_invalid_key_is_400(
    client: httpx.AsyncClient, database: Database, alice: TestUser, key: bytes
) -> None:
    headers = [(b"authorization", f"Bearer {alice.token}".encode()), (b"idempotency-key", key)]
    response = await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert await org_count(database) == 0


async def test_two_key_headers_are_400_and_the_longest_key_is_accepted(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    auth = (b"authorization", f"Bearer {alice.token}".encode())
    twice = [auth, (b"idempotency-key", b"a"), (b"idempotency-key", b"b")]
    response = await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=twice)
    assert response.status_code == 400
    longest = [auth, (b"idempotency-key", b"~" * 255)]
    assert (
        await client.post("/api/v1/orgs", json={"name": "A"}, headers=longest)
    ).status_code == 201
