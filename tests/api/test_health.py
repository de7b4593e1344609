"""Process endpoints: liveness, readiness with reasons, metrics by route template, docs."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from byteor_cloud.api.app import create_app
from byteor_cloud.db import migrate
from byteor_cloud.db.session import Database
from helpers.databases import TestDatabase


async def test_healthz_and_readyz_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "object_store": "ok"},
    }


async def test_readyz_is_503_when_migrations_are_not_at_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stale.db'}"
    migrate.upgrade(url, revision="base")
    database = Database(url)
    app = create_app(TestDatabase("sqlite", url, data_dir=tmp_path).settings(), database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    await database.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"].startswith("migrations not at head")


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    database = Database(url)
    app = create_app(
        TestDatabase("postgresql", url, data_dir=tmp_path).settings(), database=database
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    await database.dispose()
    assert response.status_code == 503
    reason = response.json()["checks"]["database"]
    assert reason.startswith("unavailable (")
    assert "127.0.0.1" not in reason  # no connection details leak


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/api/v1/no/such/thing/123")
    await client.get("/api/v1/openapi.json")
    await client.get("/static/app.css")
    text = (await client.get("/metrics")).text
    assert 'route="/api/v1/openapi.json",status="200"' in text
    assert 'route="/static/{path}",status="200"' in text
    assert 'byteor_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "/api/v1/no/such/thing/123" not in text  # raw paths would explode cardinality
    assert "byteor_http_request_duration_seconds_bucket" in text


async def test_openapi_document_and_docs_page(client: httpx.AsyncClient, app: FastAPI) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    assert document["info"]["title"] == "ByteOr Cloud API"
    assert {"/healthz", "/readyz", "/metrics"} <= set(document["paths"])
    docs = await client.get("/api/docs")
    assert docs.status_code == 200
    assert "/api/v1/openapi.json" in docs.text


async def test_page_shell_uses_our_own_css(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert '<link rel="stylesheet" href="http://testserver/static/app.css">' in page.text
    assert "ByteOr Cloud" in page.text
    css = await client.get("/static/app.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


async def test_readyz_is_503_when_the_object_store_is_not_writable(
    test_db: TestDatabase, database: Database, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the object root should be")
    settings = test_db.settings(storage_url=f"file://{blocker}")
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["object_store"] != "ok"
