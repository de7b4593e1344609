"""Process endpoints outside the API: liveness, readiness with reasons, Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from byteor_cloud.db.migrate import current_revisions_async
from byteor_cloud.db.session import Database
from byteor_cloud.storage import BlobStore, StorageUnavailable

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0

router = APIRouter(include_in_schema=True, tags=["health"])

ReadinessCheck = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class NamedCheck:
    """A readiness check: returns None when healthy, else a reason without secrets."""

    name: str
    run: ReadinessCheck


def database_checks(database: Database, heads: tuple[str, ...]) -> list[NamedCheck]:
    """Reachability and migrations-at-head checks for the configured database."""

    async def reachable_and_migrated() -> str | None:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current = await current_revisions_async(connection)
        if set(current) != set(heads):
            return f"migrations not at head (database {list(current)}, code {list(heads)})"
        return None

    return [NamedCheck("database", reachable_and_migrated)]


def store_check(store: BlobStore) -> NamedCheck:
    """The object store accepts a write, a read-back and a delete."""

    async def writable() -> str | None:
        try:
            await store.check_writable()
        except StorageUnavailable as exc:
            return exc.reason
        return None

    return NamedCheck("object_store", writable)


def worker_check(app: FastAPI) -> NamedCheck:
    """The worker loop of this process is running (worker and combined modes)."""

    async def alive() -> str | None:
        worker = app.state.worker
        return None if worker is not None and worker.ready else "worker loop not running"

    return NamedCheck("worker", alive)


async def _run_check(check: NamedCheck) -> str | None:
    try:
        return await asyncio.wait_for(check.run(), timeout=CHECK_TIMEOUT_S)
    except TimeoutError:
        return f"timed out after {CHECK_TIMEOUT_S:g}s"
    except Exception as exc:
        # The class name says what failed without echoing URLs or credentials.
        log.warning("readiness check failed", extra={"check": check.name}, exc_info=exc)
        return f"unavailable ({type(exc).__name__})"


@router.get("/healthz", summary="Liveness: the process is serving")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: dependencies reachable and migrations at head (503 with reasons)",
    responses={503: {"description": "Not ready; `checks` names the failing dependencies"}},
)
async def readyz(request: Request) -> JSONResponse:
    checks: list[NamedCheck] = request.app.state.readiness_checks
    results = await asyncio.gather(*(_run_check(check) for check in checks))
    report = {check.name: (reason or "ok") for check, reason in zip(checks, results, strict=True)}
    ready = all(reason is None for reason in results)
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": report},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
