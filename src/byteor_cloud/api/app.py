"""The application factory: one FastAPI app serving the API, the UI and process endpoints."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from byteor_cloud import __version__
from byteor_cloud.api import health
from byteor_cloud.api.edge import BodyLimit, EdgeMiddleware
from byteor_cloud.api.errors import install_error_handlers
from byteor_cloud.api.metrics import HttpMetrics
from byteor_cloud.api.v1 import build_api_router
from byteor_cloud.config import Settings
from byteor_cloud.db.migrate import script_heads
from byteor_cloud.db.session import Database
from byteor_cloud.ui.routes import mount_ui

OPENAPI_URL = "/api/v1/openapi.json"
DOCS_URL = "/api/docs"


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    extra_routers: Sequence[APIRouter] = (),
    body_limits: Sequence[BodyLimit] = (),
) -> FastAPI:
    """Build the app; `database` defaults to one made from the settings and owned by the app."""
    owns_database = database is None
    db = database or Database(settings.effective_database_url, schema=settings.database_schema)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owns_database:
                await db.dispose()

    app = FastAPI(
        title="ByteOr Cloud API",
        version=__version__,
        openapi_url=OPENAPI_URL,
        docs_url=DOCS_URL,
        redoc_url=None,
        lifespan=lifespan,
    )
    registry = CollectorRegistry(auto_describe=True)
    app.state.settings = settings
    app.state.database = db
    app.state.metrics_registry = registry
    app.state.readiness_checks = health.database_checks(db, tuple(script_heads()))

    install_error_handlers(app)
    app.add_middleware(
        EdgeMiddleware,
        metrics=HttpMetrics(registry),
        default_max_body=settings.max_request_body_bytes,
        body_limits=tuple(body_limits),
        routes=lambda: app.routes,
    )
    app.include_router(health.router)
    api = build_api_router()
    for router in extra_routers:
        api.include_router(router)
    app.include_router(api)
    mount_ui(app)
    return app


def path_limit(pattern: str, max_bytes: int) -> BodyLimit:
    """A body cap for request paths matching the regular expression `pattern`."""
    return BodyLimit(re.compile(pattern), max_bytes)
