"""REST API v1: /api/v1/auth, /api/v1/admin, /api/v1/health and the agent routes under /api/v1/agent: the core's
(keys, config, credits, runs, jobs, artifacts) and each capability's."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from agent_ui.api.v1 import admin, api_keys, artifacts, auth, config, credits, health, jobs, runs

AGENT = "/api/v1/agent"


def include_api(app: FastAPI, capability_routers: Sequence[APIRouter]) -> None:
    """Every router straight onto the app with its full prefix (each level of nested routers would build every
    route again)."""
    for router in (auth.router, admin.router, health.router):
        app.include_router(router, prefix="/api/v1")
    for router in (api_keys.router, config.router, credits.router, runs.router, jobs.router, artifacts.router,
                   *capability_routers):  # fmt: skip
        app.include_router(router, prefix=AGENT)
