"""Concurrent requests with one key cause one effect."""

from __future__ import annotations

import asyncio

import httpx

from byteor_cloud.db.session import Database
from helpers.identity import TestUser

from .conftest import keyed, org_count, records

CONCURRENT = 10


async def test_concurrent_requests_with_one_key_create_one_org(
    client: httpx.AsyncClient, database: Database, alice: TestUser
) -> None:
    headers = keyed(alice, "burst")
    responses = await asyncio.gather(
        *(
            client.post("/api/v1/orgs", json={"name": "Acme"}, headers=headers)
            for _ in range(CONCURRENT)
        )
    )
    assert await org_count(database) == 1
    originals = [
        r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
    ]
    replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    busy = [r for r in responses if r.status_code == 409]
    assert len(originals) == 1
    assert len(originals) + len(replays) + len(busy) == CONCURRENT
    assert {r.status_code for r in replays} <= {201}
    assert {r.json()["id"] for r in replays} <= {originals[0].json()["id"]}
    assert {r.json()["error"]["code"] for r in busy} <= {"idempotency_request_in_progress"}
    [record] = await records(database)
    assert record.status_code == 201
    # After the burst, the key replays the one org.
    late = await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=headers)
    assert late.json()["id"] == originals[0].json()["id"]
