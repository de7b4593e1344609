"""What a handler gets: the database, the store, the settings, and which attempt it is."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from byteor_cloud.config import Settings
from byteor_cloud.db.session import Database
from byteor_cloud.storage import BlobStore


@dataclass
class JobContext:
    """Passed to every handler. Handlers open their own short transactions through
    `database.transaction()` and must be idempotent: an attempt can run again after a
    crash between its effect and the completion of the job."""

    database: Database
    settings: Settings
    store: BlobStore
    job_id: str
    job_type: str
    attempt: int
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("byteor_cloud.jobs"))
