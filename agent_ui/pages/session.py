"""Who is signed in to the UI: the same server-side session cookie the REST API reads."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from agent_ui.deps import SESSION_COOKIE
from services.auth import Principal
from services.auth.tokens import is_api_key
from services.container import Services
from services.errors import AuthenticationError


async def signed_in(request: Request, services: Services) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or is_api_key(token):
        return None
    try:
        return await services.auth.authenticate(token)
    except AuthenticationError:
        return None


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def sign_out_handler(request: Request, services: Services):  # type: ignore[no-untyped-def]
    token = request.cookies.get(SESSION_COOKIE)

    async def sign_out() -> None:
        if token:
            await services.auth.end_session(token)
        ui.navigate.to("/login")

    return sign_out
