"""Running the processes: the API server (uvicorn) with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import logging

import uvicorn

from byteor_cloud.api.app import create_app
from byteor_cloud.config import Settings
from byteor_cloud.db import migrate
from byteor_cloud.logs import configure_logging

log = logging.getLogger(__name__)

# In-flight requests get this long to finish after SIGTERM before connections are cut.
GRACEFUL_SHUTDOWN_S = 30


def prepare_database(settings: Settings) -> None:
    """The embedded default (SQLite) migrates itself; PostgreSQL is migrated by the operator
    (`byteor-cloud db upgrade`) so several API processes never race a schema change."""
    if not settings.uses_postgres:
        migrate.upgrade(settings.effective_database_url, schema=settings.database_schema)


def serve_api(settings: Settings) -> None:
    """Serve API + UI (and, from F2 on, the worker in `combined` mode) until signalled."""
    configure_logging(settings.log_level)
    prepare_database(settings)
    settings.master_key()  # generate the embedded key now, not inside a request
    host, port = settings.api_address
    app = create_app(settings)
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
            "url": settings.effective_api_base_url,
            "database": "postgresql" if settings.uses_postgres else "sqlite",
        },
    )
    # uvicorn installs SIGTERM/SIGINT handlers: stop accepting, drain, run lifespan shutdown.
    uvicorn.Server(config).run()
