"""Enrollment, runtime keys, heartbeats, liveness and desired state (A1)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from byteor_cloud.agents.jobs import LivenessSweep, sweep
from byteor_cloud.core.clock import set_clock, utcnow
from byteor_cloud.core.crypto import SecretBox
from byteor_cloud.db.models.agents import Agent, AgentKey, EnrollmentToken
from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.db.session import Database
from byteor_cloud.jobs.context import JobContext

from .conftest import Fleet, routed_requests


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_fifty_concurrent_enrollments_with_one_token_make_one_agent(
    fleet: Fleet, database: Database
) -> None:
    token = await fleet.token()
    responses = await asyncio.gather(
        *(
            fleet.client.post(
                f"{fleet.env}/agents", json={"hostname": f"host-{n}"}, headers=bearer(token)
            )
            for n in range(50)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [401] * 49
    assert all(
        r.json()["error"]["code"] == "invalid_enrollment_token"
        for r in responses
        if r.status_code == 401
    )
    async with database.transaction(readonly=True) as session:
        agents = (await session.scalars(select(Agent))).all()
    assert len(agents) == 1


async def test_enrollment_response_and_name_derivation(fleet: Fleet) -> None:
    first = await fleet.enroll(
        hostname="Web-01.example.com", labels={"zone": "a"}, agent_version="1.2.3"
    )
    assert first["api_key"].startswith("bc_agk_")
    assert first["heartbeat_interval_s"] == 10
    assert (first["org_id"], first["environment_id"]) == (fleet.org_id, fleet.environment_id)
    assert [k["status"] for k in first["signing_keys"]["keys"]] == ["active"]
    second = await fleet.enroll(hostname="web-01.example.com")
    agents = (await fleet.client.get(f"{fleet.env}/agents", headers=fleet.operator.headers)).json()[
        "items"
    ]
    names = {a["id"]: a["name"] for a in agents}
    assert names[first["agent_id"]] == "web-01-example-com"
    assert names[second["agent_id"]] == "web-01-example-com-2"
    assert {a["status"] for a in agents} == {"pending"}


async def test_an_expired_or_revoked_token_is_refused(fleet: Fleet, database: Database) -> None:
    token = await fleet.token()
    async with database.transaction() as session:
        await session.execute(
            update(EnrollmentToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = await fleet.client.post(f"{fleet.env}/agents", json={}, headers=bearer(token))
    assert expired.status_code == 401
    other = await fleet.token()
    listed = (
        await fleet.client.get(f"{fleet.env}/enrollment-tokens", headers=fleet.operator.headers)
    ).json()["items"]
    assert all("token" not in item for item in listed)
    newest = listed[0]["id"]
    assert (
        await fleet.client.delete(
            f"{fleet.env}/enrollment-tokens/{newest}", headers=fleet.operator.headers
        )
    ).status_code == 204
    revoked = await fleet.client.post(f"{fleet.env}/agents", json={}, headers=bearer(other))
    assert revoked.status_code == 401


async def test_keys_scopes_paths_deletion_and_rotation(fleet: Fleet, database: Database) -> None:
    a = await fleet.enroll(name="a")
    b = await fleet.enroll(name="b")
    beat = f"/api/v1/agents/{a['agent_id']}/heartbeat"
    assert (await fleet.client.post(beat, json={}, headers=bearer(a["api_key"]))).status_code == 200
    wrong = await fleet.client.post(beat, json={}, headers=bearer(b["api_key"]))
    assert wrong.status_code == 403
    assert (
        await fleet.client.post(beat, json={}, headers=bearer("bc_agk_bogus"))
    ).status_code == 401
    async with database.transaction() as session:
        await session.execute(
            update(AgentKey)
            .where(AgentKey.agent_id == b["agent_id"])
            .values(scopes=["agent:heartbeat"])
        )
    scoped = await fleet.client.get(
        f"/api/v1/agents/{b['agent_id']}/signing-keys", headers=bearer(b["api_key"])
    )
    assert scoped.status_code == 403
    assert scoped.json()["error"]["code"] == "missing_scope"
    rotated = (
        await fleet.client.post(
            f"{fleet.env}/agents/{a['agent_id']}/rotate-key",
            json={"overlap_s": 60},
            headers=fleet.operator.headers,
        )
    ).json()
    assert (await fleet.client.post(beat, json={}, headers=bearer(a["api_key"]))).status_code == 200
    assert (
        await fleet.client.post(beat, json={}, headers=bearer(rotated["api_key"]))
    ).status_code == 200
    set_clock(lambda: utcnow_real() + timedelta(seconds=61))
    try:
        assert (
            await fleet.client.post(beat, json={}, headers=bearer(a["api_key"]))
        ).status_code == 401
        assert (
            await fleet.client.post(beat, json={}, headers=bearer(rotated["api_key"]))
        ).status_code == 200
    finally:
        set_clock(None)
    deleted = await fleet.client.delete(
        f"{fleet.env}/agents/{a['agent_id']}", headers=fleet.operator.headers
    )
    assert deleted.status_code == 204
    after = await fleet.client.post(beat, json={}, headers=bearer(rotated["api_key"]))
    assert after.status_code == 401


def utcnow_real():
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def run_sweep(fleet: Fleet) -> None:
    app = fleet.app
    context = JobContext(
        database=app.state.database,
        settings=app.state.settings,
        store=app.state.store,
        job_id="sweep",
        job_type="agent_liveness_sweep",
        attempt=1,
    )
    await sweep(context, LivenessSweep())


async def test_offline_after_three_intervals_and_back_on_the_next_beat(
    fleet: Fleet, database: Database
) -> None:
    agent = await fleet.enroll(name="a")
    path = f"{fleet.env}/agents/{agent['agent_id']}"
    beat = f"/api/v1/agents/{agent['agent_id']}/heartbeat"
    await fleet.client.post(
        beat,
        json={"status": "ok", "agent_version": "1.0", "metrics": {"records_in": 5, "lag": 0.5}},
        headers=bearer(agent["api_key"]),
    )
    shown = (await fleet.client.get(path, headers=fleet.operator.headers)).json()
    assert (shown["status"], shown["health"], shown["agent_version"]) == ("online", "ok", "1.0")
    assert shown["metrics"]["records_in"] == 5
    assert shown["heartbeat_age_s"] is not None
    for seconds, expected in ((25, "online"), (31, "offline")):
        set_clock(lambda s=seconds: utcnow_real() + timedelta(seconds=s))
        try:
            await run_sweep(fleet)
        finally:
            set_clock(None)
        assert (await fleet.client.get(path, headers=fleet.operator.headers)).json()[
            "status"
        ] == expected
    offline = (
        await fleet.client.get(
            f"{fleet.env}/agents", params={"status": "offline"}, headers=fleet.operator.headers
        )
    ).json()["items"]
    assert [a["id"] for a in offline] == [agent["agent_id"]]
    await fleet.client.post(beat, json={}, headers=bearer(agent["api_key"]))
    assert (await fleet.client.get(path, headers=fleet.operator.headers)).json()[
        "status"
    ] == "online"
    audit = (
        await fleet.client.get(
            f"/api/v1/orgs/{fleet.org_id}/audit",
            params={"resource_id": agent["agent_id"]},
            headers=fleet.operator.headers,
        )
    ).json()["items"]
    assert [r["action"] for r in audit][::-1] == [
        "agent.enroll",
        "agent.online",
        "agent.offline",
        "agent.online",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "sleepy"},
        {"metrics": {"records_in": -1}},
        {"unknown": 1},
        {"tuning": {"degraded": [{"setting": "x", "reason": "y"}] * 65}},
        {"agent_version": "x" * 65},
    ],
)
async def test_malformed_heartbeats_change_nothing(
    fleet: Fleet, database: Database, body: dict
) -> None:
    agent = await fleet.enroll(name="a")
    beat = f"/api/v1/agents/{agent['agent_id']}/heartbeat"
    response = await fleet.client.post(beat, json=body, headers=bearer(agent["api_key"]))
    assert response.status_code == 422
    async with database.transaction(readonly=True) as session:
        stored = await session.get_one(Agent, agent["agent_id"])
    assert (stored.status, stored.last_heartbeat_at, stored.metrics) == ("pending", None, None)


async def test_an_oversized_heartbeat_is_413_and_changes_nothing(
    fleet: Fleet, database: Database
) -> None:
    agent = await fleet.enroll(name="a")
    beat = f"/api/v1/agents/{agent['agent_id']}/heartbeat"
    huge = {"tuning": {"host": {f"k{n}": "v" * 250 for n in range(300)}}}
    response = await fleet.client.post(beat, json=huge, headers=bearer(agent["api_key"]))
    assert response.status_code == 413
    async with database.transaction(readonly=True) as session:
        assert (await session.get_one(Agent, agent["agent_id"])).last_heartbeat_at is None


async def test_desired_state_304_performs_no_database_write(
    fleet: Fleet, database: Database
) -> None:
    agent = await fleet.enroll(name="a")
    url = f"/api/v1/agents/{agent['agent_id']}/desired-state"
    first = await fleet.client.get(url, headers=bearer(agent["api_key"]))
    assert first.status_code == 200
    assert first.json() == {
        "assignment": None,
        "replay_orders": [],
        "signing_keys_etag": first.json()["signing_keys_etag"],
    }
    etag = first.headers["etag"]
    beat = await fleet.client.post(
        f"/api/v1/agents/{agent['agent_id']}/heartbeat", json={}, headers=bearer(agent["api_key"])
    )
    assert beat.json()["desired_state_etag"] == etag
    statements: list[str] = []

    def count(statement: str) -> None:
        statements.append(statement.strip().split()[0].upper())

    # Every engine of the database handle and the hot path's driver connections.
    with database.observe_statements(count), routed_requests(fleet.app) as routed:
        unchanged = await fleet.client.get(
            url, headers={**bearer(agent["api_key"]), "If-None-Match": etag}
        )
    assert routed == []  # answered by the agent gateway, the path agents take
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert statements  # it did authenticate against the database …
    assert not {"INSERT", "UPDATE", "DELETE"} & set(statements)  # … and wrote nothing


async def test_private_signing_key_bytes_are_nowhere_in_the_database(
    fleet: Fleet, database: Database
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    settings = fleet.app.state.settings
    async with database.transaction(readonly=True) as session:
        key = await session.scalar(select(SigningKey).where(SigningKey.org_id == fleet.org_id))
    assert key is not None
    raw = SecretBox(settings.master_key(), "signing-keys").decrypt(key.private_key_encrypted)
    private = (
        Ed25519PrivateKey.from_private_bytes(raw[-32:])
        if len(raw) in (32, 48)
        else serialization.load_pem_private_key(raw, None)
    )
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    import base64

    needles = {
        seed,
        seed.hex().encode(),
        base64.b64encode(seed).rstrip(b"="),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
    }
    values: list[bytes] = []
    async with database.transaction(readonly=True) as session:
        for table in (
            "signing_keys",
            "audit_records",
            "security_events",
            "jobs",
            "idempotency_records",
            "organizations",
        ):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        values.append(bytes(value))
                    elif value is not None:
                        values.append(str(value).encode())
    assert any(key.public_key.encode() in v for v in values)  # the scan does see the keys
    assert not any(needle in value for needle in needles for value in values)


async def test_deleting_an_environment_with_online_agents_needs_force(fleet: Fleet) -> None:
    agent = await fleet.enroll(name="a")
    await fleet.client.post(
        f"/api/v1/agents/{agent['agent_id']}/heartbeat", json={}, headers=bearer(agent["api_key"])
    )
    refused = await fleet.client.delete(fleet.env, headers=fleet.operator.headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "deletion_needs_force"
    assert refused.json()["error"]["details"]["reasons"] == ["1 agent(s) online"]
    project = fleet.env.rsplit("/environments/", 1)[0]
    assert (await fleet.client.delete(project, headers=fleet.operator.headers)).status_code == 409
    forced = await fleet.client.delete(
        fleet.env, params={"force": "true"}, headers=fleet.operator.headers
    )
    assert forced.status_code == 204
    gone = await fleet.client.post(
        f"/api/v1/agents/{agent['agent_id']}/heartbeat", json={}, headers=bearer(agent["api_key"])
    )
    assert gone.status_code == 401


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"status": "ok"}', "application/json"),
        (b'{"status": "bad"}', "application/json"),
        (b'{"unknown": 1}', "application/json"),
        (b"[]", "application/json"),
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b'{"status": "ok"}', "text/plain"),
        (b'{"status": "ok"}', None),
    ],
)
async def test_the_fast_path_answers_like_the_documented_route(
    fleet: Fleet, content: bytes, content_type: str | None
) -> None:
    """The agent runtime fast path (api/v1/agent_runtime.py) and the FastAPI route (taken
    by a heartbeat with an Idempotency-Key) give the same status and error envelope."""
    agent = await fleet.enroll(name="a")
    beat = f"/api/v1/agents/{agent['agent_id']}/heartbeat"
    results = []
    for extra in ({}, {"Idempotency-Key": f"parity-{len(content)}-{content_type}"}):
        headers = {**bearer(agent["api_key"]), **extra}
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await fleet.client.post(beat, content=content, headers=headers)
        body = response.json()
        body.pop("request_id", None)
        limited = "x-ratelimit-limit" in response.headers
        results.append((response.status_code, body.get("error", body), limited))
    fast, routed = results
    assert fast == routed
