"""Environment posture, policy defaults and consistency, runtime settings."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Workspace


@pytest.mark.parametrize(
    ("posture", "expected"),
    [
        (
            "dev",
            {
                "deploy_requires_approval": False,
                "replay": "allowed",
                "require_distinct_approver": False,
            },
        ),
        (
            "staging",
            {
                "deploy_requires_approval": True,
                "replay": "dry_run_only",
                "require_distinct_approver": False,
            },
        ),
        (
            "prod",
            {
                "deploy_requires_approval": True,
                "replay": "allowed",
                "execute_replay_requires_approval": True,
                "require_distinct_approver": True,
            },
        ),
    ],
)
async def test_posture_defaults(
    client: httpx.AsyncClient, workspace: Workspace, posture: str, expected: dict
) -> None:
    response = await client.post(
        f"{workspace.project}/environments",
        json={"name": f"e-{posture}", "posture": posture},
        headers=workspace.admin.headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert expected.items() <= body["policy"].items()
    assert body["policy"]["approval_ttl_s"] == 86_400
    assert (
        body["max_inflight_deployments"],
        body["artifact_retention_days"],
        body["heartbeat_interval_s"],
    ) == (1, 30, 30)


@pytest.mark.parametrize(
    ("posture", "policy", "field"),
    [
        ("prod", {"deploy_requires_approval": False}, "policy.deploy_requires_approval"),
        ("dev", {"require_distinct_approver": True}, "policy.require_distinct_approver"),
        (
            "staging",
            {"execute_replay_requires_approval": True},
            "policy.execute_replay_requires_approval",
        ),
    ],
)
async def test_impossible_combinations_are_422_naming_the_field(
    client: httpx.AsyncClient, workspace: Workspace, posture: str, policy: dict, field: str
) -> None:
    response = await client.post(
        f"{workspace.project}/environments",
        json={"name": "x", "posture": posture, "policy": policy},
        headers=workspace.admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == field


async def test_overrides_and_runtime_settings(
    client: httpx.AsyncClient, workspace: Workspace
) -> None:
    response = await client.post(
        f"{workspace.project}/environments",
        json={
            "name": "x",
            "posture": "staging",
            "policy": {"replay": "disabled", "approval_ttl_s": 600},
            "max_inflight_deployments": 3,
            "heartbeat_interval_s": 10,
        },
        headers=workspace.admin.headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["policy"]["replay"], body["policy"]["approval_ttl_s"]) == ("disabled", 600)
    assert (body["max_inflight_deployments"], body["heartbeat_interval_s"]) == (3, 10)
    bad = await client.post(
        f"{workspace.project}/environments",
        json={"name": "y", "heartbeat_interval_s": 1},
        headers=workspace.admin.headers,
    )
    assert bad.status_code == 422
