"""Cross-tenant access is impossible by construction: every route under an org, called by a
member of another org with ids of this one, answers 404 — route by route, from the
OpenAPI document, so a new route is covered the day it is added."""

from __future__ import annotations

import re

import httpx

from helpers.identity import make_user

from .conftest import World

UNSAFE_BODY = {"name": "x", "email": "viewer@example.com", "role": "viewer"}


async def test_every_org_route_is_404_for_members_of_other_orgs(
    client: httpx.AsyncClient, world: World, database
) -> None:
    stranger = await make_user(database, "stranger@example.com")
    own = await client.post("/api/v1/orgs", json={"name": "Elsewhere"}, headers=stranger.headers)
    assert own.status_code == 201
    values = {
        "org_id": world.org_id,
        "project_id": world.project_id,
        "environment_id": world.environment_id,
        "user_id": world.viewer.user_id,
        "key_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    }
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    checked = []
    for template, operations in paths.items():
        if "{org_id}" not in template:
            continue
        path = re.sub(
            r"\{(\w+)\}", lambda m: values.get(m.group(1), "01ARZ3NDEKTSV4RRFFQ69G5FAV"), template
        )
        for method in operations:
            headers = {**stranger.headers, "If-Match": '"1"'}
            # Enrollment authenticates with an enrollment token, not a membership: a
            # person's token is simply not a credential there (401), and nothing is made.
            enrolling = method == "post" and template.endswith("/agents")
            body = {} if enrolling else UNSAFE_BODY if method in ("post", "put") else None
            response = await client.request(method.upper(), path, headers=headers, json=body)
            expected = 401 if enrolling else 404
            assert response.status_code == expected, (method, template, response.text)
            checked.append((method, template))
    assert len(checked) >= 25  # the sweep really covered the tenancy surface
    # And nothing changed in the org that was probed.
    org = await client.get(f"/api/v1/orgs/{world.org_id}", headers=world.admin.headers)
    assert org.json()["revision"] == 1
