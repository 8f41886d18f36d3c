"""REST API v1: /api/v1/auth, /api/v1/admin, /api/v1/health and the agent routes under /api/v1/agent."""

from __future__ import annotations

from fastapi import APIRouter

from agent_ui.api.v1 import admin, api_keys, auth, chat, config, credits, health, sandbox


def build_api_router() -> APIRouter:
    agent = APIRouter(prefix="/agent")
    agent.include_router(api_keys.router)
    agent.include_router(config.router)
    agent.include_router(chat.router)
    agent.include_router(credits.router)
    agent.include_router(sandbox.router)

    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(auth.router)
    v1.include_router(admin.router)
    v1.include_router(health.router)
    v1.include_router(agent)
    return v1
