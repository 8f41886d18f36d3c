"""The session cookie, shared by the REST login and the UI sign-in so both set it the same way."""

from __future__ import annotations

from starlette.responses import Response

from agent_ui.deps import SESSION_COOKIE


def set_session_cookie(response: Response, token: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/")


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=secure, path="/")
