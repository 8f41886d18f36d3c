"""FastAPI dependencies: the services, the calling principal, scope and admin guards.

Guards also run *before* the body is read (see :class:`ApiRoute`), so an anonymous or unauthorised call gets
401/403 and never learns anything from a 422, and never makes the server read a body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Message

from services.auth import Principal, Scope
from services.auth.scopes import grants
from services.container import Services
from services.db.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from services.errors import AuthenticationError, PermissionDeniedError, ValidationFailedError

SESSION_COOKIE = "agent_ui_session"
# Larger JSON bodies are refused with 413 before they are read (upload routes set their own limit).
JSON_BODY_LIMIT = 1024 * 1024
BODY_LIMIT_KEY = "x-max-body-bytes"

_bearer = HTTPBearer(auto_error=False, description="an `sk_...` API key or the access_token from login")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="the session cookie set by login")


def get_services(request: HTTPConnection) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def credential_of(request: HTTPConnection) -> str | None:
    """The Bearer token if one is sent, else the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def resolve_principal(request: HTTPConnection) -> Principal:
    """Authenticate once per request (or WebSocket); the result is kept on ``request.state``."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = credential_of(request)
    if token is None:
        raise AuthenticationError("sign in, or send Authorization: Bearer sk_...")
    principal = await get_services(request).auth.authenticate(token)
    request.state.principal = principal
    return principal


class Guard:
    """A dependency that can also check a request before its body is read."""

    def check(self, principal: Principal) -> None:
        return None

    async def precheck(self, request: Request) -> None:
        self.check(await resolve_principal(request))

    async def __call__(
        self,
        request: Request,
        _bearer_doc: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
        _cookie_doc: Annotated[str | None, Depends(_cookie)] = None,
    ) -> Principal:
        principal = await resolve_principal(request)
        self.check(principal)
        return principal


class RequireScope(Guard):
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def check(self, principal: Principal) -> None:
        if not grants(principal.scopes, self.scope):
            raise PermissionDeniedError(f"this API key lacks the '{self.scope}' scope", code="insufficient_scope")


class RequireAdmin(RequireScope):
    def __init__(self) -> None:
        super().__init__(Scope.ADMIN)

    def check(self, principal: Principal) -> None:
        if not principal.is_admin:
            raise PermissionDeniedError("admins only", code="admin_required")
        super().check(principal)


authenticated = Guard()
CurrentPrincipal = Annotated[Principal, Depends(authenticated)]
AdminPrincipal = Annotated[Principal, Depends(RequireAdmin())]


def _guards(dependant: Dependant) -> Iterator[Guard]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Guard):
            yield sub.call
        yield from _guards(sub)


class ApiRoute(APIRoute):
    """Runs the route's guards, then limits and parses the body itself, before FastAPI validates it.

    The body is refused with 413 as soon as it is known to be too large (from ``Content-Length`` before a byte
    is read, else while it streams). JSON that cannot be parsed (not UTF-8, nested past the parser's depth) or
    that holds a lone UTF-16 surrogate or a NUL (which no database or hash takes) is a 422 here, not a 400 or a 500
    further in. A route that takes uploads sets its own limit, in bytes or as a setting's dotted name, with
    ``openapi_extra={BODY_LIMIT_KEY: "sandbox.max_upload_bytes"}`` (the schema shows it too).
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        guards = list(dict.fromkeys(_guards(self.dependant)))
        reads_json = self.body_field is not None and not _is_form(self.dependant)
        declared: int | str = (self.openapi_extra or {}).get(BODY_LIMIT_KEY, JSON_BODY_LIMIT)

        async def checked(request: Request) -> Response:
            for guard in guards:
                await guard.precheck(request)
            limit_body(request, body_limit(declared, get_services(request)))
            if reads_json:
                await parse_json_body(request)
            return await handler(request)

        return checked


def body_limit(declared: int | str, services: Services) -> int:
    """A route's limit: bytes, or the dotted name of a setting (``"sandbox.max_upload_bytes"``)."""
    if isinstance(declared, int):
        return declared
    value: Any = services.settings
    for name in declared.split("."):
        value = getattr(value, name)
    return int(value)


def limit_body(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    receive, size = request.receive, 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > limit:
            raise BodyTooLarge(limit)
        return message

    request._receive = counted


class BodyTooLarge(HTTPException):
    # An HTTPException so FastAPI's own body and form parsing pass it on instead of turning it into a 400.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than this endpoint's limit of {limit} bytes")


def _is_form(dependant: Dependant) -> bool:
    return any(isinstance(param.field_info, params.Form) for param in dependant.body_params)


# Escapes that decode to text no database stores: an unpaired UTF-16 surrogate, or NUL (PostgreSQL refuses it).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:[dD][89abcdefABCDEF]|0000)")


async def parse_json_body(request: Request) -> None:
    """Parse the body once (FastAPI reuses ``request._json``) and refuse what cannot be stored."""
    body = await request.body()
    if not body:
        return
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValidationFailedError("request body is not valid JSON", code="malformed_json") from exc
    try:
        problem = _unstorable_text(parsed) if _SUSPECT_ESCAPE.search(body) else None
    except RecursionError as exc:
        raise ValidationFailedError("request body is nested too deeply", code="malformed_json") from exc
    if problem:
        raise ValidationFailedError(f"request body holds {problem}, which is not text", code="invalid_text")
    request._json = parsed


def _unstorable_text(value: Any) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character (\\u0000)"
        try:
            value.encode()
        except UnicodeEncodeError:
            return "a lone UTF-16 surrogate (\\ud800-\\udfff)"
        return None
    if isinstance(value, dict):
        return next((found for item in value.items() for found in map(_unstorable_text, item) if found), None)
    if isinstance(value, list):
        return next((found for found in map(_unstorable_text, value) if found), None)
    return None


def api_router(
    *,
    prefix: str,
    tags: list[str],
    guard: Guard | None = None,
    **kwargs: Any,
) -> APIRouter:
    """The one way to make a REST router: guarded routes, bodies limited in size, JSON errors documented."""
    from agent_ui.errors import ErrorEnvelope

    dependencies = [Depends(guard)] if guard is not None else []
    responses: dict[int | str, dict[str, Any]] = {422: {"model": ErrorEnvelope, "description": "validation failed"}}
    responses |= kwargs.pop("responses", {})
    return APIRouter(
        prefix=prefix,
        tags=tags,  # type: ignore[arg-type]
        route_class=ApiRoute,
        dependencies=dependencies,
        responses=responses,
        **kwargs,
    )


class PageParams:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[
            str | None,
            Query(
                max_length=512,
                description="the `next_cursor` of the previous page (opaque, base64url); another value is a 422 "
                "`invalid_cursor`",
            ),
        ] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor


PageDep = Annotated[PageParams, Depends()]
