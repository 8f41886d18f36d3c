"""Authorization inside services: a service method that needs a role or a scope checks the principal itself,
so no caller (a router, a page, a tool, a job) can forget it. Routers and pages keep their own guards too."""

from __future__ import annotations

from services.auth.schemas import Principal
from services.auth.scopes import Scope, grants
from services.errors import PermissionDeniedError


def require_scope(principal: Principal, scope: Scope) -> None:
    if not grants(principal.scopes, scope):
        raise PermissionDeniedError(f"this API key lacks the '{scope}' scope", code="insufficient_scope")


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDeniedError("admins only", code="admin_required")
    require_scope(principal, Scope.ADMIN)
