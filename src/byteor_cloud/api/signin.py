"""Browser sign-in (local password and OIDC), sessions and CSRF: installed on the API app.

Filled in by the sign-in work of issue T1; until then no browser credential is accepted.
"""

from __future__ import annotations

from fastapi import FastAPI

from byteor_cloud.config import Settings


def install_sign_in(app: FastAPI, settings: Settings) -> None:
    """Mount the sign-in routes and register the session-cookie authenticator."""
