"""`Idempotency-Key` on every POST: installed on the API app.

Filled in by the idempotency work of issue T1.
"""

from __future__ import annotations

from fastapi import FastAPI

from byteor_cloud.config import Settings


def install_idempotency(app: FastAPI, settings: Settings) -> None:
    """Wrap POST routes so a repeated key replays the first response."""
