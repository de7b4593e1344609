"""The agent hot path's kept connections (db/hotpath.py): a write that would wait for
SQLite's lock never blocks the event loop and still lands through the pool; a dead kept
PostgreSQL connection is replaced without failing the request."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from byteor_cloud.db.hotpath import HotPathBusy
from byteor_cloud.db.models.agents import Agent
from byteor_cloud.db.session import Database

from .conftest import Fleet, routed_requests


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _online_agent(fleet: Fleet) -> dict[str, str]:
    agent = await fleet.enroll(name="hot")
    beat = await fleet.client.post(
        f"/api/v1/agents/{agent['agent_id']}/heartbeat", json={}, headers=bearer(agent["api_key"])
    )
    assert beat.status_code == 200
    return agent


# SQLite's write lock: PostgreSQL has row locks instead.
@pytest.mark.parametrize("test_db", ["sqlite"], indirect=True)
async def test_a_heartbeat_while_sqlite_is_locked_waits_off_the_loop_and_lands(
    fleet: Fleet, database: Database
) -> None:
    assert database.is_sqlite
    agent = await _online_agent(fleet)
    async with database.hot() as hot, database.transaction() as session:
        # Another writer holds the lock: the hot connection refuses at once.
        await session.execute(text("UPDATE agents SET agent_version = 'x' WHERE 1 = 0"))
        with pytest.raises(HotPathBusy):
            await hot.write(text("UPDATE agents SET agent_version = 'y' WHERE 1 = 0"))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with database.transaction() as session:
        await session.execute(text("UPDATE agents SET agent_version = 'x' WHERE 1 = 0"))
        beat = asyncio.create_task(
            fleet.client.post(
                f"/api/v1/agents/{agent['agent_id']}/heartbeat",
                json={"agent_version": "2.0"},
                headers=bearer(agent["api_key"]),
            )
        )
        clock = asyncio.create_task(ticker())
        await asyncio.sleep(0.3)  # the beat waits for the lock while the loop keeps running
        assert not beat.done()
        assert ticks >= 10
    response = await beat
    clock.cancel()
    assert response.status_code == 200, response.text
    async with database.transaction(readonly=True) as session:
        stored = await session.scalar(
            select(Agent.agent_version).where(Agent.id == agent["agent_id"])
        )
    assert stored == "2.0"


# PostgreSQL's kept connections: SQLite keeps one local connection.
@pytest.mark.parametrize("test_db", ["postgresql"], indirect=True)
async def test_a_broken_kept_postgresql_connection_is_replaced(
    fleet: Fleet, database: Database
) -> None:
    assert not database.is_sqlite
    agent = await _online_agent(fleet)
    url = f"/api/v1/agents/{agent['agent_id']}/desired-state"
    first = await fleet.client.get(url, headers=bearer(agent["api_key"]))
    assert first.status_code == 200
    poll = {**bearer(agent["api_key"]), "If-None-Match": first.headers["etag"]}
    assert (await fleet.client.get(url, headers=poll)).status_code == 304
    # Kill the backend this process keeps for the hot path, as a server restart would.
    async with database.hot() as hot:
        pid = (await hot.fetch(text("SELECT pg_backend_pid()"))).rows[0][0]
    async with database.transaction() as session:
        await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    # The poll that meets the dead connection is served on a fresh one, as are the next.
    with routed_requests(fleet.app) as routed:
        for _ in range(3):
            response = await fleet.client.get(url, headers=poll)
            assert response.status_code == 304, response.text
    assert routed == []  # the gateway answered them all, on the hot path
    async with database.hot() as hot:
        assert (await hot.fetch(text("SELECT pg_backend_pid()"))).rows[0][0] != pid
