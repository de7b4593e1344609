"""The `/api/v1` routers; each context adds its router here."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from byteor_cloud.api.deps import require_json_body
from byteor_cloud.api.schemas import ERROR_RESPONSES
from byteor_cloud.api.v1 import (
    admin_jobs,
    agent_runtime,
    agents,
    audit,
    authoring,
    authz,
    deployments,
    me,
    orgs,
    projects,
    signing_keys,
)


def build_api_router() -> APIRouter:
    """Every `/api/v1` route, behind the JSON media-type guard and the error responses."""
    router = APIRouter(
        prefix="/api/v1",
        dependencies=[Depends(require_json_body)],
        responses=ERROR_RESPONSES,
    )
    # The agent runtime routes go first: thousands of agents poll them, and routes are
    # matched in order, so every route in front of them is paid on every poll.
    for module in (
        agent_runtime,
        me,
        orgs,
        signing_keys,
        projects,
        authoring,
        audit,
        authz,
        agents,
        deployments,
        admin_jobs,
    ):
        router.include_router(module.router)
    return router
