"""REST API v1: /api/v1/auth, /api/v1/admin, /api/v1/health and the agent routes under /api/v1/agent: the core's
(keys, config, credits, runs, jobs, artifacts) and each capability's."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from agent_ui.api.v1 import admin, api_keys, artifacts, auth, config, credits, health, jobs, runs


def build_api_router(capability_routers: Sequence[APIRouter]) -> APIRouter:
    agent = APIRouter(prefix="/agent")
    for router in (api_keys.router, config.router, credits.router, runs.router, jobs.router, artifacts.router,
                   *capability_routers):  # fmt: skip
        agent.include_router(router)

    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(auth.router)
    v1.include_router(admin.router)
    v1.include_router(health.router)
    v1.include_router(agent)
    return v1
