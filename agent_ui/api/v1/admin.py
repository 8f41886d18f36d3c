"""User management for admins."""

from __future__ import annotations

from agent_ui.deps import AdminPrincipal, PageDep, RequireAdmin, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from services.auth.schemas import UserAdminUpdate, UserRead
from services.db import Page

router = api_router(
    prefix="/admin",
    tags=["admin"],
    guard=RequireAdmin(),
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}},
)


@router.get("/users")
async def list_users(principal: AdminPrincipal, services: ServicesDep, page: PageDep) -> Page[UserRead]:
    """Users with role, disabled flag and credit balance."""
    users = await services.auth.list_users(principal, limit=page.limit, cursor=page.cursor)
    balances = await services.credits.balances([user.id for user in users.items])
    items = [user.model_copy(update={"balance": balances.get(user.id)}) for user in users.items]
    return Page(items=items, next_cursor=users.next_cursor)


@router.patch("/users/{user_id}", responses={404: {"model": ErrorEnvelope}, 409: {"model": ErrorEnvelope}})
async def update_user(
    user_id: str, body: UserAdminUpdate, principal: AdminPrincipal, services: ServicesDep
) -> UserRead:
    """Change a role, or disable/enable a user. Disabling ends the user's sessions and keys at once."""
    return await services.auth.update_user(principal, user_id, body)
