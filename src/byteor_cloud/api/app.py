"""The application factories: the API app (API, UI and process endpoints, plus the worker
in `combined` mode) and the worker-mode app (process endpoints only)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from byteor_cloud import __version__
from byteor_cloud.api import health
from byteor_cloud.api.agent_gateway import AgentGateway
from byteor_cloud.api.edge import BodyLimit, EdgeMiddleware
from byteor_cloud.api.errors import install_error_handlers
from byteor_cloud.api.idempotency import install_idempotency
from byteor_cloud.api.metrics import HttpMetrics
from byteor_cloud.api.ratelimit import close_rate_limiting, install_rate_limiting
from byteor_cloud.api.signin import install_sign_in
from byteor_cloud.api.v1 import build_api_router
from byteor_cloud.config import Settings
from byteor_cloud.db.migrate import script_heads
from byteor_cloud.db.session import Database
from byteor_cloud.jobs.registry import JobRegistry
from byteor_cloud.storage import BlobStore, open_blob_store
from byteor_cloud.ui.routes import mount_ui
from byteor_cloud.worker.service import build_worker, running

OPENAPI_URL = "/api/v1/openapi.json"
# Heartbeats are small and frequent: a tight cap keeps a misbehaving agent cheap to refuse.
HEARTBEAT_MAX_BYTES = 64 * 1024
DOCS_URL = "/api/docs"


def _base_app(
    settings: Settings,
    *,
    database: Database | None,
    store: BlobStore | None,
    run_worker: bool,
    registry: JobRegistry | None,
    **fastapi_options: object,
) -> FastAPI:
    """An app owning (or borrowing) the database and store, with process endpoints, and
    the worker running in its lifespan when `run_worker`."""
    owned: list[Database | BlobStore] = []
    db = database or Database(settings.effective_database_url, schema=settings.database_schema)
    if database is None:
        owned.append(db)
    blobs = store or open_blob_store(
        settings.effective_storage_url, s3_endpoint_url=settings.s3_endpoint_url
    )
    if store is None:
        owned.append(blobs)
    metrics_registry = CollectorRegistry(auto_describe=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(close_rate_limiting, app)
            for resource in owned:
                stack.push_async_callback(
                    resource.dispose if isinstance(resource, Database) else resource.aclose
                )
            if run_worker:
                worker = build_worker(
                    settings,
                    database=db,
                    store=blobs,
                    metrics_registry=metrics_registry,
                    registry=registry,
                )
                app.state.worker = await stack.enter_async_context(running(worker))
            yield

    app = FastAPI(
        version=__version__,
        lifespan=lifespan,
        # Our metrics are Prometheus (api/metrics.py). FastAPI's native OpenTelemetry,
        # when on, asks the environment for configured providers on every request: off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        **fastapi_options,  # type: ignore[arg-type]
    )
    app.state.settings = settings
    app.state.database = db
    app.state.store = blobs
    app.state.metrics_registry = metrics_registry
    app.state.worker = None
    app.state.readiness_checks = [
        *health.database_checks(db, tuple(script_heads())),
        health.store_check(blobs),
        *([health.worker_check(app)] if run_worker else []),
    ]
    install_error_handlers(app)
    app.include_router(health.router)
    return app


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    store: BlobStore | None = None,
    run_worker: bool = False,
    registry: JobRegistry | None = None,
    extra_routers: Sequence[APIRouter] = (),
    body_limits: Sequence[BodyLimit] = (),
) -> FastAPI:
    """The API app. Resources not given are built from the settings and owned by the app."""
    app = _base_app(
        settings,
        database=database,
        store=store,
        run_worker=run_worker,
        registry=registry,
        title="ByteOr Cloud API",
        openapi_url=OPENAPI_URL,
        docs_url=DOCS_URL,
        redoc_url=None,
    )
    install_rate_limiting(app, settings)
    install_sign_in(app, settings)
    install_idempotency(app, settings)
    # Inside the edge, in front of everything else (see its docstring).
    app.add_middleware(AgentGateway)
    http_metrics = HttpMetrics(app.state.metrics_registry)
    app.state.auth_metrics = http_metrics.auth_outcomes
    app.add_middleware(
        EdgeMiddleware,
        metrics=http_metrics,
        default_max_body=settings.max_request_body_bytes,
        body_limits=(*DEFAULT_BODY_LIMITS, *body_limits),
        routes=lambda: app.routes,
    )
    api = build_api_router()
    for router in extra_routers:
        api.include_router(router)
    app.include_router(api)
    mount_ui(app)
    return app


def create_worker_app(
    settings: Settings,
    *,
    database: Database | None = None,
    store: BlobStore | None = None,
    registry: JobRegistry | None = None,
) -> FastAPI:
    """The worker-mode app: `/healthz`, `/readyz`, `/metrics`, and the worker itself."""
    app = _base_app(
        settings,
        database=database,
        store=store,
        run_worker=True,
        registry=registry,
        title="ByteOr Cloud worker",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        EdgeMiddleware,
        metrics=HttpMetrics(app.state.metrics_registry),
        default_max_body=settings.max_request_body_bytes,
        routes=lambda: app.routes,
    )
    return app


def path_limit(pattern: str, max_bytes: int) -> BodyLimit:
    """A body cap for request paths matching the regular expression `pattern`."""
    return BodyLimit(re.compile(pattern), max_bytes)


DEFAULT_BODY_LIMITS = (path_limit(r"^/api/v1/agents/[^/]+/heartbeat$", HEARTBEAT_MAX_BYTES),)
