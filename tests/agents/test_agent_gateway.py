"""The agent gateway (api/agent_gateway.py): it answers the steady heartbeat and the
unchanged desired-state poll itself, exactly as the documented routes would, and hands
everything else to them; on PostgreSQL the requests of one moment share their statements
(db/hotpath.py `_Coalescer`) without ever being answered from a cache."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from byteor_cloud.api.agent_gateway import AgentGateway
from byteor_cloud.api.app import create_app
from byteor_cloud.db.hotpath import HotConnection, HotPathBusy
from byteor_cloud.db.models.agents import Agent
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase

from .conftest import Fleet, open_fleet, routed_requests


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _stored(database: Database, agent_id: str) -> Agent:
    async with database.transaction(readonly=True) as session:
        agent = await session.scalar(select(Agent).where(Agent.id == agent_id))
    assert agent is not None
    return agent


async def test_the_gateway_takes_steady_requests_and_hands_on_the_rest(
    fleet: Fleet, database: Database
) -> None:
    agent = await fleet.enroll(name="g")
    key, agent_id = agent["api_key"], agent["agent_id"]
    beat = f"/api/v1/agents/{agent_id}/heartbeat"
    state = f"/api/v1/agents/{agent_id}/desired-state"
    with routed_requests(fleet.app) as routed:
        # pending → online is a status change (audited): the route's transaction takes it.
        assert (await fleet.client.post(beat, json={}, headers=bearer(key))).status_code == 200
        assert routed == [beat]
        routed.clear()
        # The agent is online now: its beats stay in the gateway.
        for _ in range(3):
            response = await fleet.client.post(beat, json={"status": "ok"}, headers=bearer(key))
            assert response.status_code == 200
        assert routed == []
        # A poll without an ETag, or with a stale one, gets the state from the route …
        full = await fleet.client.get(state, headers=bearer(key))
        stale = await fleet.client.get(state, headers={**bearer(key), "If-None-Match": '"x"'})
        assert (full.status_code, stale.status_code) == (200, 200)
        assert routed == [state, state]
        routed.clear()
        # … an unchanged one is the gateway's 304.
        etag = full.headers["etag"]
        unchanged = await fleet.client.get(state, headers={**bearer(key), "If-None-Match": etag})
        assert unchanged.status_code == 304
        assert routed == []
        # Every refusal is the route's, with its code.
        other = await fleet.enroll(name="other")
        wrong = await fleet.client.post(
            f"/api/v1/agents/{other['agent_id']}/heartbeat", json={}, headers=bearer(key)
        )
        assert wrong.status_code == 403
        assert wrong.json()["error"]["code"] == "wrong_agent"
        assert routed == [f"/api/v1/agents/{other['agent_id']}/heartbeat"]
        deleted = await fleet.client.delete(
            f"{fleet.env}/agents/{agent_id}", headers=fleet.operator.headers
        )
        assert deleted.status_code == 204
        gone = await fleet.client.get(state, headers={**bearer(key), "If-None-Match": etag})
        assert gone.status_code == 401
        assert gone.json()["error"]["code"] == "invalid_credential"
    stored = await _stored(database, other["agent_id"])
    assert stored.last_heartbeat_at is None  # the refused beat wrote nothing


def _without_gateway(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AgentGateway]
    app.middleware_stack = None
    return app


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}
    }
    return response.status_code, headers, response.content


async def test_the_gateway_answers_byte_for_byte_as_the_routes(
    fleet: Fleet, test_db: TestDatabase, database: Database
) -> None:
    agent = await fleet.enroll(name="p")
    key, agent_id = agent["api_key"], agent["agent_id"]
    beat = f"/api/v1/agents/{agent_id}/heartbeat"
    state = f"/api/v1/agents/{agent_id}/desired-state"
    assert (await fleet.client.post(beat, json={}, headers=bearer(key))).status_code == 200
    etag = (await fleet.client.get(state, headers=bearer(key))).headers["etag"]
    routes_only = _without_gateway(
        create_app(test_db.settings(rate_limit_agents_per_min=100_000), database=database)
    )
    transport = httpx.ASGITransport(app=routes_only)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
        answers = []
        for client in (fleet.client, plain):
            with routed_requests(fleet.app) as routed:
                steady = await client.post(
                    beat,
                    json={"status": "ok", "metrics": {"records_in": 3}},
                    headers=bearer(key),
                )
                unchanged = await client.get(state, headers={**bearer(key), "If-None-Match": etag})
            answers.append((_comparable(steady), _comparable(unchanged), routed))
    through_gateway, through_routes = answers
    assert through_gateway[2] == []  # the first client's answers came from the gateway
    assert through_gateway[:2] == through_routes[:2]
    assert through_gateway[0][0] == 200
    assert through_gateway[1][0] == 304


async def test_a_request_handed_on_is_counted_once(
    test_db: TestDatabase, database: Database
) -> None:
    app = create_app(
        test_db.settings(rate_limit_enrollment_per_min=100, rate_limit_agents_per_min=4),
        database=database,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        fleet = await open_fleet(app, client, database, email="limits@example.com")
        agent = await fleet.enroll(name="limited")
        key, agent_id = agent["api_key"], agent["agent_id"]
        beat = f"/api/v1/agents/{agent_id}/heartbeat"
        state = f"/api/v1/agents/{agent_id}/desired-state"
        remaining = []
        first = await client.post(beat, json={}, headers=bearer(key))  # the route's
        second = await client.post(beat, json={}, headers=bearer(key))  # the gateway's
        full = await client.get(state, headers=bearer(key))  # gateway counts, route answers
        etag = full.headers["etag"]
        poll = await client.get(state, headers={**bearer(key), "If-None-Match": etag})
        for response in (first, second, full):
            assert response.status_code == 200
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
        assert remaining == [3, 2, 1]  # one hit each, whoever answered
        assert poll.status_code == 304
        assert poll.headers["x-ratelimit-remaining"] == "0"
        refused = await client.get(state, headers={**bearer(key), "If-None-Match": etag})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1


async def test_steady_beats_keep_what_they_leave_out_and_store_as_the_orm_does(
    fleet: Fleet, database: Database
) -> None:
    agent = await fleet.enroll(name="fields")
    key, agent_id = agent["api_key"], agent["agent_id"]
    beat = f"/api/v1/agents/{agent_id}/heartbeat"
    first = {
        "agent_version": "1.4.0",
        "status": "ok",
        "running": {"deployment_id": None, "epoch": 0},
        "tuning": {"applied": {"batch": "64"}, "host": {"cpus": 8, "numa": False}},
        "metrics": {"records_in": 1, "lag": 0.5},
    }
    with routed_requests(fleet.app) as routed:
        assert (await fleet.client.post(beat, json=first, headers=bearer(key))).status_code == 200
        before = await _stored(database, agent_id)
        # Only metrics: everything else stays as it was.
        only_metrics = {"metrics": {"records_in": 9, "records_out": 7, "lag": 1.25}}
        assert (
            await fleet.client.post(beat, json=only_metrics, headers=bearer(key))
        ).status_code == 200
        after = await _stored(database, agent_id)
        # An explicit null clears; a new status is the health.
        cleared = {"agent_version": None, "status": "degraded", "running": None}
        assert (await fleet.client.post(beat, json=cleared, headers=bearer(key))).status_code == 200
        last = await _stored(database, agent_id)
    assert routed == [beat]  # only the first (pending → online) went to the route
    assert before.last_heartbeat_at is not None
    assert after.last_heartbeat_at is not None
    assert after.last_heartbeat_at > before.last_heartbeat_at
    assert (after.agent_version, after.health, after.running, after.tuning) == (
        before.agent_version,
        before.health,
        before.running,
        before.tuning,
    )
    assert after.tuning == first["tuning"]  # as reported: the beat keeps what it was sent
    assert after.metrics == only_metrics["metrics"]
    assert (last.agent_version, last.health, last.running) == (None, "degraded", None)
    assert last.metrics == after.metrics
    assert last.tuning == after.tuning
    assert last.status == "online"


@pytest.mark.parametrize("test_db", ["postgresql"], indirect=True)
async def test_concurrent_requests_share_statements_and_each_gets_its_own_answer(
    fleet: Fleet, database: Database
) -> None:
    agents = [await fleet.enroll(name=f"c{i}") for i in range(12)]
    etags = {}
    for agent in agents:
        headers = bearer(agent["api_key"])
        base = f"/api/v1/agents/{agent['agent_id']}"
        assert (await fleet.client.post(f"{base}/heartbeat", json={}, headers=headers)).is_success
        etags[agent["agent_id"]] = (
            await fleet.client.get(f"{base}/desired-state", headers=headers)
        ).headers["etag"]
    statements: list[str] = []
    with routed_requests(fleet.app) as routed, database.observe_statements(statements.append):
        beats = await asyncio.gather(
            *(
                fleet.client.post(
                    f"/api/v1/agents/{agent['agent_id']}/heartbeat",
                    json={"metrics": {"records_in": number}},
                    headers=bearer(agent["api_key"]),
                )
                for number, agent in enumerate(agents)
            )
        )
        polls = await asyncio.gather(
            *(
                fleet.client.get(
                    f"/api/v1/agents/{agent['agent_id']}/desired-state",
                    headers={**bearer(agent["api_key"]), "If-None-Match": etags[agent["agent_id"]]},
                )
                for agent in agents
            )
        )
    assert routed == []
    assert [response.status_code for response in beats] == [200] * 12
    assert [response.status_code for response in polls] == [304] * 12
    # 36 reads and writes of 12 agents' requests took fewer round trips than requests.
    assert 0 < len(statements) < 36
    for number, agent in enumerate(agents):
        stored = await _stored(database, agent["agent_id"])
        assert stored.metrics == {"records_in": number}


async def test_a_failed_batch_sends_each_request_its_own_way(database: Database) -> None:
    """One request's bad value must not fail the requests it was batched with: every one
    of them is told to take the ordinary path (HotPathBusy), and the next batch runs."""
    calls: list[dict[str, Any]] = []

    async def failing(hot: HotConnection, batch: dict[str, Any]) -> dict[str, Any]:
        calls.append(batch)
        raise ValueError("a bad value in one of them")

    async def doubling(hot: HotConnection, batch: dict[str, Any]) -> dict[str, Any]:
        calls.append(batch)
        return {key: payload * 2 for key, payload in batch.items()}

    outcomes = await asyncio.gather(
        *(database.coalesced(failing, key, 1) for key in "abc"), return_exceptions=True
    )
    assert all(isinstance(outcome, HotPathBusy) for outcome in outcomes)
    assert calls == [{"a": 1, "b": 1, "c": 1}]  # one batch
    doubled = await asyncio.gather(
        *(database.coalesced(doubling, key, n) for n, key in enumerate("ab"))
    )
    assert doubled == [0, 2]
    # The same key twice in one moment: one entry (the later payload), both answered.
    twice = await asyncio.gather(
        database.coalesced(doubling, "k", 1), database.coalesced(doubling, "k", 5)
    )
    assert twice == [10, 10]
    assert calls[-1] == {"k": 5}
