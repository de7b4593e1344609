"""Config bundles: immutable, environment-scoped, attached to a ready version of the same
project, secrets only by reference, and a bundle_hash exactly as specified."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi import FastAPI

from byteor_cloud.authoring.bundles import bundle_hash
from byteor_cloud.db.session import Database
from helpers.jobs import drain_jobs

from .conftest import WORKED_EXAMPLE, WORKED_HASH, Workspace, make_workspace


async def ready_version(client: httpx.AsyncClient, app: FastAPI, ws: Workspace) -> dict:
    draft = (
        await client.post(
            f"{ws.project}/drafts",
            json={"name": "d", "target": "single_ring", "plan": WORKED_EXAMPLE},
            headers=ws.admin.headers,
        )
    ).json()
    version = (
        await client.post(
            f"{ws.project}/drafts/{draft['id']}/versions", json={}, headers=ws.admin.headers
        )
    ).json()
    await drain_jobs(app)
    return version


def test_bundle_hash_is_the_specified_text() -> None:
    expected_text = (
        "bundle.v=1\n"
        "runtime_config.profile=low-latency\n"
        "runtime_config.wait=spin\n"
        "secret_refs.DB_PASSWORD=env:DB_PASSWORD\n"
        f"spec_hash={WORKED_HASH}\n"
    )
    expected = "sha256:" + hashlib.sha256(expected_text.encode()).hexdigest()
    assert (
        bundle_hash(
            WORKED_HASH,
            {"wait": "spin", "profile": "low-latency"},
            {"DB_PASSWORD": "env:DB_PASSWORD"},
        )
        == expected
    )
    assert (
        bundle_hash(
            WORKED_HASH,
            {"profile": "low-latency", "wait": "spin"},
            {"DB_PASSWORD": "env:DB_PASSWORD"},
        )
        == expected
    )


async def test_create_a_bundle_in_any_key_order(
    client: httpx.AsyncClient, app: FastAPI, workspace: Workspace
) -> None:
    ws = workspace
    version = await ready_version(client, app, ws)
    hashes = set()
    for config in (
        {"wait": "spin", "kafka.brokers": "k1:9092"},
        {"kafka.brokers": "k1:9092", "wait": "spin"},
    ):
        response = await client.post(
            f"{ws.environment}/config-bundles",
            json={
                "version_id": version["id"],
                "runtime_config": config,
                "secret_refs": {"KAFKA_PASSWORD": "file:/etc/byteor/kafka.pw"},
            },
            headers=ws.admin.headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["runtime_config"]["profile"] == "default"
        hashes.add(response.json()["bundle_hash"])
    assert len(hashes) == 1
    listed = (
        await client.get(f"{ws.environment}/config-bundles", headers=ws.admin.headers)
    ).json()["items"]
    assert len(listed) == 2


@pytest.mark.parametrize(
    ("runtime_config", "secret_refs", "code", "field"),
    [
        (
            {"db.url": "postgres://app:hunter2@db/x"},
            {},
            "secret_value_refused",
            "runtime_config.db.url",
        ),
        ({"kafka.password": "s3cret"}, {}, "secret_value_refused", "runtime_config.kafka.password"),
        ({"token": "bc_pat_abcdefghijklmnop"}, {}, "secret_value_refused", "runtime_config.token"),
        ({"x": "AKIAABCDEFGHIJKLMNOP"}, {}, "secret_value_refused", "runtime_config.x"),
        ({}, {"DB": "hunter2"}, "secret_value_refused", "secret_refs.DB"),
        ({"profile": "turbo"}, {}, "invalid_bundle", "runtime_config.profile"),
        ({"Bad Key": "1"}, {}, "invalid_bundle", "runtime_config.Bad Key"),
        ({}, {"lower": "env:X"}, "invalid_bundle", "secret_refs.lower"),
    ],
)
async def test_bad_bundles_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    app: FastAPI,
    workspace: Workspace,
    runtime_config: dict,
    secret_refs: dict,
    code: str,
    field: str,
) -> None:
    ws = workspace
    version = await ready_version(client, app, ws)
    response = await client.post(
        f"{ws.environment}/config-bundles",
        json={
            "version_id": version["id"],
            "runtime_config": runtime_config,
            "secret_refs": secret_refs,
        },
        headers=ws.admin.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["details"]["field"] == field
    for value in [v for v in [*runtime_config.values(), *secret_refs.values()] if len(v) > 4]:
        assert value not in response.text  # a refused secret is not echoed back


async def test_a_bundle_needs_a_ready_version_of_the_same_project(
    client: httpx.AsyncClient, app: FastAPI, workspace: Workspace, database: Database
) -> None:
    ws = workspace
    draft = (
        await client.post(
            f"{ws.project}/drafts",
            json={"name": "d", "target": "single_ring", "plan": WORKED_EXAMPLE},
            headers=ws.admin.headers,
        )
    ).json()
    ingesting = (
        await client.post(
            f"{ws.project}/drafts/{draft['id']}/versions", json={}, headers=ws.admin.headers
        )
    ).json()
    not_ready = await client.post(
        f"{ws.environment}/config-bundles",
        json={"version_id": ingesting["id"]},
        headers=ws.admin.headers,
    )
    assert not_ready.status_code == 422
    assert not_ready.json()["error"]["code"] == "version_not_ready"
    other = await make_workspace(client, database, "other@example.com")
    foreign = await ready_version(client, app, other)
    refused = await client.post(
        f"{ws.environment}/config-bundles",
        json={"version_id": foreign["id"]},
        headers=ws.admin.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "version_not_in_project"
