"""Every error the app can produce uses the one envelope, with a request id, never a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from byteor_cloud.api.app import create_app
from byteor_cloud.api.schemas import StrictModel
from byteor_cloud.core import errors
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase

probe = APIRouter(prefix="/_probe")


class ItemIn(StrictModel):
    name: str
    size: int = 0


@probe.post("/items", status_code=201)
async def create_item(body: ItemIn) -> dict[str, Any]:
    return {"name": body.name, "size": body.size}


@probe.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret-internal-detail SELECT * FROM users")


DOMAIN_ERRORS: dict[str, tuple[errors.DomainError, int]] = {
    "malformed": (errors.MalformedRequest("bad"), 400),
    "unauthenticated": (errors.Unauthenticated("who"), 401),
    "denied": (errors.PermissionDenied("no"), 403),
    "missing": (errors.NotFound("gone"), 404),
    "conflict": (errors.Conflict("dup", code="duplicate_name"), 409),
    "state": (errors.InvalidState("late"), 409),
    "stale": (errors.PreconditionFailed("stale"), 412),
    "large": (errors.PayloadTooLarge("big"), 413),
    "media": (errors.UnsupportedMediaType("xml"), 415),
    "invalid": (errors.InvalidInput("nope", details={"field": "x"}), 422),
    "precondition": (errors.PreconditionRequired("if-match"), 428),
    "limited": (errors.RateLimited("slow down", retry_after_s=7), 429),
    "down": (errors.DependencyUnavailable("db"), 503),
}


@probe.get("/raise/{kind}")
async def raise_domain_error(kind: str) -> None:
    raise DOMAIN_ERRORS[kind][0]


@pytest.fixture
async def probe_client(
    test_db: TestDatabase, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(test_db.settings(), database=database, extra_routers=[probe])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


async def test_unknown_path_is_404(probe_client: httpx.AsyncClient) -> None:
    assert_envelope(await probe_client.get("/api/v1/nowhere"), 404, "not_found")


async def test_wrong_method_is_405(probe_client: httpx.AsyncClient) -> None:
    assert_envelope(await probe_client.delete("/healthz"), 405, "method_not_allowed")


async def test_unknown_field_is_422_naming_it(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/api/v1/_probe/items", json={"name": "a", "org_id": "x", "status": "y"}
    )
    body = assert_envelope(response, 422, "validation_failed")
    fields = {problem["field"] for problem in body["error"]["details"]["fields"]}
    assert fields == {"body.org_id", "body.status"}
    assert "org_id" in body["error"]["message"]


async def test_wrong_type_is_422_naming_the_field_without_echoing_input(
    probe_client: httpx.AsyncClient,
) -> None:
    response = await probe_client.post(
        "/api/v1/_probe/items", json={"name": "a", "size": "hunter2-password"}
    )
    body = assert_envelope(response, 422, "validation_failed")
    assert body["error"]["details"]["fields"][0]["field"] == "body.size"
    assert "hunter2-password" not in response.text


async def test_invalid_json_is_400(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/api/v1/_probe/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, "malformed_request")


async def test_non_json_body_is_415(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post(
        "/api/v1/_probe/items", content=b"<item/>", headers={"content-type": "application/xml"}
    )
    assert_envelope(response, 415, "unsupported_media_type")


async def test_valid_body_passes(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.post("/api/v1/_probe/items", json={"name": "a", "size": 3})
    assert response.status_code == 201
    assert response.json() == {"name": "a", "size": 3}


async def test_body_over_the_cap_is_413(probe_client: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"a" * (4 * 1024 * 1024) + b'"}'
    response = await probe_client.post(
        "/api/v1/_probe/items", content=big, headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "payload_too_large")


async def test_body_over_the_cap_is_413_even_when_content_length_lies(
    probe_client: httpx.AsyncClient,
) -> None:
    chunk = b"a" * 65536

    async def body() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(80):  # 5 MiB in all
            yield chunk
        yield b'"}'

    response = await probe_client.post(
        "/api/v1/_probe/items",
        content=body(),
        headers={"content-type": "application/json", "content-length": "20"},
    )
    assert_envelope(response, 413, "payload_too_large")


async def test_unhandled_error_is_500_without_internals(probe_client: httpx.AsyncClient) -> None:
    response = await probe_client.get("/api/v1/_probe/boom")
    assert_envelope(response, 500, "internal_error")
    assert "secret-internal-detail" not in response.text
    assert "SELECT" not in response.text


@pytest.mark.parametrize("kind", sorted(DOMAIN_ERRORS))
async def test_domain_errors_map_through_the_one_table(
    probe_client: httpx.AsyncClient, kind: str
) -> None:
    error, status = DOMAIN_ERRORS[kind]
    response = await probe_client.get(f"/api/v1/_probe/raise/{kind}")
    body = assert_envelope(response, status, error.code)
    assert body["error"]["details"] == error.details
    if status == 429:
        assert response.headers["retry-after"] == "7"


async def test_a_caller_request_id_is_kept_when_safe(probe_client: httpx.AsyncClient) -> None:
    kept = await probe_client.get("/api/v1/nowhere", headers={"x-request-id": "abc-12345678"})
    assert kept.json()["request_id"] == "abc-12345678"
    replaced = await probe_client.get("/api/v1/nowhere", headers={"x-request-id": "bad id\r\n"})
    assert replaced.json()["request_id"] != "bad id\r\n"
    assert len(replaced.headers["x-request-id"]) == 32
