"""Signing-key fixtures: an org with people in each role, a controllable clock, and helpers
that read keys straight from the database and run the sweep job's handler."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from byteor_cloud.core.clock import set_clock
from byteor_cloud.core.ids import new_id
from byteor_cloud.db.models.signing import SigningKey
from byteor_cloud.db.session import Database
from byteor_cloud.jobs.context import JobContext
from byteor_cloud.signing.jobs import SigningKeySweep, sweep_signing_keys
from helpers.databases import TestDatabase
from helpers.identity import TestUser, make_user


@dataclass
class SigningWorld:
    admin: TestUser  # org_admin (creator)
    viewer: TestUser  # org viewer
    operator: TestUser  # project-level operator only
    outsider: TestUser  # member of nothing
    org_id: str
    environment_id: str

    @property
    def keys_path(self) -> str:
        return f"/api/v1/orgs/{self.org_id}/signing-keys"


class FakeClock:
    """A clock the test moves by hand (installed with `core.clock.set_clock`)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    set_clock(lambda: fake.now)
    try:
        yield fake
    finally:
        set_clock(None)


@pytest.fixture
async def world(client: httpx.AsyncClient, database: Database) -> SigningWorld:
    admin = await make_user(database, "admin@example.com")
    viewer = await make_user(database, "viewer@example.com")
    operator = await make_user(database, "operator@example.com")
    outsider = await make_user(database, "outsider@example.com")
    created = await client.post("/api/v1/orgs", json={"name": "Acme"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    org_path = f"/api/v1/orgs/{created.json()['id']}"
    project = await client.post(
        f"{org_path}/projects", json={"name": "payments"}, headers=admin.headers
    )
    environment = await client.post(
        f"{org_path}/projects/{project.json()['id']}/environments",
        json={"name": "prod", "posture": "prod"},
        headers=admin.headers,
    )
    assert environment.status_code == 201, environment.text
    for email, path, role in (
        (viewer.email, f"{org_path}/members", "viewer"),
        (operator.email, f"{org_path}/projects/{project.json()['id']}/members", "operator"),
    ):
        added = await client.post(path, json={"email": email, "role": role}, headers=admin.headers)
        assert added.status_code == 201, added.text
    return SigningWorld(
        admin, viewer, operator, outsider, created.json()["id"], environment.json()["id"]
    )


async def stored_keys(database: Database, org_id: str) -> list[SigningKey]:
    """Every key row of the org (retired ones too), by kid."""
    async with database.transaction(readonly=True) as session:
        statement = select(SigningKey).where(SigningKey.org_id == org_id).order_by(SigningKey.id)
        return list((await session.scalars(statement)).all())


async def run_sweep(test_db: TestDatabase, database: Database, app: FastAPI) -> None:
    """One run of the periodic sweep, as a worker would run it (at the current clock)."""
    context = JobContext(
        database=database,
        settings=test_db.settings(),
        store=app.state.store,
        job_id=new_id(),
        job_type=SigningKeySweep.job_type,
        attempt=1,
    )
    await sweep_signing_keys(context, SigningKeySweep())
