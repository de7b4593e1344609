"""Running the processes under uvicorn, with graceful shutdown on SIGTERM/SIGINT.

`combined` serves API + UI and runs the worker in one process; `api` serves API + UI;
`worker` runs the worker with its own `/healthz`, `/readyz` and `/metrics`.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from byteor_cloud.api.app import create_app, create_worker_app
from byteor_cloud.config import DeploymentMode, Settings
from byteor_cloud.db import migrate
from byteor_cloud.db.engine import make_sync_engine
from byteor_cloud.logs import configure_logging

log = logging.getLogger(__name__)

# In-flight requests get this long to finish after SIGTERM before connections are cut;
# the worker's own grace period (BYTEOR_CLOUD_WORKER_SHUTDOWN_GRACE_S) runs after it.
GRACEFUL_SHUTDOWN_S = 30


def prepare_database(settings: Settings) -> None:
    """The embedded default (SQLite) migrates itself; PostgreSQL is migrated by the operator
    (`byteor-cloud db upgrade`) so several processes never race a schema change."""
    if not settings.uses_postgres:
        migrate.upgrade(
            settings.effective_database_url,
            schema=settings.database_schema,
            master_key=settings.master_key(),
        )


def sign_in_hint(settings: Settings) -> str:
    """The lines an operator looks for on start: where to go, and how to sign in."""
    ui = settings.effective_ui_base_url
    lines = [
        f"ByteOr Cloud ({settings.deployment_mode.value}) at {ui}/ — API reference {ui}/api/docs",
        f"Sign in at {ui}/auth/login"
        + (" (identity provider or password)." if settings.oidc_issuer else " (password)."),
    ]
    if not _has_users(settings):
        lines.append(
            "No users yet. Create the first administrator (in another terminal):\n"
            "  .venv/bin/byteor-cloud admin bootstrap --email you@example.com "
            "--password 'a long passphrase'"
        )
    return "\n".join(lines)


def _has_users(settings: Settings) -> bool:
    engine = make_sync_engine(settings.effective_database_url, schema=settings.database_schema)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1 FROM users LIMIT 1")).first() is not None
    except DBAPIError:
        return True  # not migrated yet (PostgreSQL): /readyz explains; no hint to give
    finally:
        engine.dispose()


def _app_for(settings: Settings) -> tuple[FastAPI, tuple[str, int]]:
    mode = settings.deployment_mode
    if mode is DeploymentMode.worker:
        return create_worker_app(settings), settings.worker_address
    return create_app(settings, run_worker=mode is DeploymentMode.combined), settings.api_address


def serve(settings: Settings) -> None:
    """Run the processes the deployment mode asks for until signalled."""
    configure_logging(settings.log_level)
    prepare_database(settings)
    settings.master_key()  # generate the embedded key now, not inside a request
    app, (host, port) = _app_for(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # client addresses come from BYTEOR_CLOUD_TRUSTED_PROXIES rules
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    log.info(
        "serving",
        extra={
            "mode": settings.deployment_mode.value,
            "address": f"{host}:{port}",
            "database": "postgresql" if settings.uses_postgres else "sqlite",
        },
    )
    if settings.deployment_mode is not DeploymentMode.worker:
        print(sign_in_hint(settings), file=sys.stderr, flush=True)
    # uvicorn installs SIGTERM/SIGINT handlers: stop accepting, drain, run lifespan shutdown
    # (which stops the worker: running jobs get their grace period, the rest are released).
    uvicorn.Server(config).run()
