"""FastAPI dependencies: the services, the calling principal, scope and admin guards.

Guards also run *before* the body is parsed (see :class:`GuardedRoute`), so an anonymous or
unauthorised call gets 401/403 and never learns anything from a 422.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from services.auth import Principal, Scope
from services.auth.scopes import grants
from services.container import Services
from services.db.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from services.errors import AuthenticationError, PermissionDeniedError

SESSION_COOKIE = "agent_ui_session"

_bearer = HTTPBearer(auto_error=False, description="an `sk_...` API key or the access_token from login")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="the session cookie set by login")


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def credential_of(request: Request) -> str | None:
    """The Bearer token if one is sent, else the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def resolve_principal(request: Request) -> Principal:
    """Authenticate once per request; the result is kept on ``request.state``."""
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


class GuardedRoute(APIRoute):
    """Runs the route's guards before FastAPI reads and validates the body."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        guards = list(dict.fromkeys(_guards(self.dependant)))
        if not guards:
            return handler

        async def guarded(request: Request) -> Response:
            for guard in guards:
                await guard.precheck(request)
            return await handler(request)

        return guarded


def api_router(*, prefix: str, tags: list[str], guard: Guard | None = None, **kwargs: Any) -> APIRouter:
    """The one way to make a REST router: guarded routes, JSON errors documented, a guard for every route."""
    from agent_ui.errors import ErrorEnvelope

    dependencies = [Depends(guard)] if guard is not None else []
    responses: dict[int | str, dict[str, Any]] = {422: {"model": ErrorEnvelope, "description": "validation failed"}}
    responses |= kwargs.pop("responses", {})
    return APIRouter(
        prefix=prefix,
        tags=tags,  # type: ignore[arg-type]
        route_class=GuardedRoute,
        dependencies=dependencies,
        responses=responses,
        **kwargs,
    )


class PageParams:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> None:
        self.limit = limit
        self.cursor = cursor


PageDep = Annotated[PageParams, Depends()]
