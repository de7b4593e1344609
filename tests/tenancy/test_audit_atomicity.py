"""A change and its audit record commit together: if the audit write fails, the change does
not commit either."""

from __future__ import annotations

import httpx
from sqlalchemy import delete, select

from byteor_cloud.db.models.audit import AuditChainHead
from byteor_cloud.db.models.tenancy import Project
from byteor_cloud.db.session import Database

from .conftest import World


async def test_a_failed_audit_write_leaves_no_committed_change(
    client: httpx.AsyncClient, world: World, database: Database
) -> None:
    # Break the org's chain head: every audit append in this org now fails.
    async with database.transaction() as session:
        await session.execute(delete(AuditChainHead).where(AuditChainHead.org_id == world.org_id))
    response = await client.post(
        f"/api/v1/orgs/{world.org_id}/projects", json={"name": "never"}, headers=world.admin.headers
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    async with database.transaction(readonly=True) as session:
        names = (
            await session.scalars(select(Project.name).where(Project.org_id == world.org_id))
        ).all()
    assert "never" not in names
    assert sorted(names) == ["payments", "search"]
