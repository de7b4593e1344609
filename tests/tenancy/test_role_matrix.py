"""Role × route: the permission each route declares (read from its dependencies) decides
every role's answer exactly as the permission table says; and the tenancy matrix for a
member of another project of the same org and for a caller without credentials."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from byteor_cloud.core.permissions import ROLE_PERMISSIONS, Permission, Role
from byteor_cloud.db.session import Database
from helpers.identity import make_user

from .conftest import World

PLACEHOLDER = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def declared_permission(route: APIRoute) -> Permission | None:
    """The Permission a route's `scoped(...)` dependency checks (None: not org-scoped)."""
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        call = dependant.call
        closure = getattr(call, "__closure__", None) or ()
        for cell in closure:
            if isinstance(cell.cell_contents, Permission):
                return cell.cell_contents
        stack.extend(dependant.dependencies)
    return None


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """(full path template, route) of every API route, whether FastAPI keeps included
    routers flat (older releases) or as wrappers with effective contexts (newer ones)."""
    found: list[tuple[str, APIRoute]] = []
    for top in app.routes:
        if isinstance(top, APIRoute):
            found.append((top.path, top))
        contexts = getattr(top, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                if isinstance(context.original_route, APIRoute):
                    found.append((context.path_format, context.original_route))
    return found


def scoped_routes(app: FastAPI) -> list[tuple[str, str, Permission]]:
    found = []
    for path, route in api_routes(app):
        if "{org_id}" in path:
            permission = declared_permission(route)
            if permission is not None:
                found.extend((method, path, permission) for method in route.methods)
    return found


def fill(template: str, world: World) -> str:
    values = {
        "org_id": world.org_id,
        "project_id": world.project_id,
        "environment_id": world.environment_id,
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), PLACEHOLDER), template)


BODY: dict[str, Any] = {"name": "matrix-x", "email": "nobody@example.com", "role": "viewer"}


async def test_every_role_gets_what_the_permission_table_says(
    client: httpx.AsyncClient, app: FastAPI, world: World, database: Database
) -> None:
    routes = scoped_routes(app)
    assert len(routes) >= 30
    people = {}
    for role in Role:
        user = await make_user(database, f"{role.value}@matrix.example.com")
        if role is Role.org_admin or role is Role.viewer:
            await client.post(
                f"/api/v1/orgs/{world.org_id}/members",
                json={"email": user.email, "role": role.value},
                headers=world.admin.headers,
            )
        else:
            await client.post(
                f"/api/v1/orgs/{world.org_id}/projects/{world.project_id}/members",
                json={"email": user.email, "role": role.value},
                headers=world.admin.headers,
            )
        people[role] = user
    checked = 0
    for method, template, permission in routes:
        if method == "DELETE" and template.endswith(
            ("{org_id}", "{project_id}", "{environment_id}")
        ):
            continue  # would delete the world under the other checks
        for role, user in people.items():
            headers = {**user.headers, "If-Match": '"999"'}
            body = BODY if method in ("POST", "PUT") else None
            response = await client.request(
                method, fill(template, world), headers=headers, json=body
            )
            granted = permission in ROLE_PERMISSIONS[role]
            if role in (Role.project_admin, Role.operator) and permission in (
                Permission.view_org,
                Permission.manage_org_memberships,
            ):
                granted = permission is Permission.view_org  # project-only: ViewOrg only
            if granted:
                assert response.status_code != 403, (role, method, template)
            else:
                assert response.status_code == 403, (role, method, template, response.text)
                assert response.json()["error"]["details"] == {"permission": permission.value}
            checked += 1
    assert checked >= 100


async def test_members_of_another_project_and_anonymous_callers(
    client: httpx.AsyncClient, app: FastAPI, world: World, database: Database
) -> None:
    other = await make_user(database, "elsewhere@example.com")
    bound = await client.post(
        f"/api/v1/orgs/{world.org_id}/projects/{world.other_project_id}/members",
        json={"email": other.email, "role": "project_admin"},
        headers=world.admin.headers,
    )
    assert bound.status_code == 201
    for method, template, _ in scoped_routes(app):
        path = fill(template, world)
        body = BODY if method in ("POST", "PUT") else None
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, template)
        if "{project_id}" not in template:
            continue
        response = await client.request(
            method, path, json=body, headers={**other.headers, "If-Match": '"1"'}
        )
        assert response.status_code == 404, (method, template, response.text)
        missing = await client.request(
            method,
            path.replace(world.project_id, PLACEHOLDER),
            json=body,
            headers={**other.headers, "If-Match": '"1"'},
        )
        assert missing.json()["error"]["code"] == response.json()["error"]["code"]
