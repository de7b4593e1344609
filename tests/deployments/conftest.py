"""Deployment fixtures: the in-process rig (helpers.deploy_rig) on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from byteor_cloud.api.app import create_app
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase
from helpers.deploy_rig import Rig, make_rig


@pytest.fixture
async def rig(test_db: TestDatabase, database: Database) -> AsyncIterator[Rig]:
    app = create_app(
        test_db.settings(rate_limit_enrollment_per_min=10_000, rate_limit_agents_per_min=100_000),
        database=database,
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield await make_rig(client, app, database)
