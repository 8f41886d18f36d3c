"""API keys of the calling user. The whole key is in the create response only."""

from __future__ import annotations

from fastapi import Response, status

from agent_ui.deps import CurrentPrincipal, PageDep, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from services.auth import Scope
from services.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, ApiKeyUpdate
from services.db import Page

router = api_router(
    prefix="/api-keys",
    tags=["api-keys"],
    guard=RequireScope(Scope.API_KEYS),
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}},
)
NOT_FOUND = {404: {"model": ErrorEnvelope}}


@router.get("")
async def list_api_keys(principal: CurrentPrincipal, services: ServicesDep, page: PageDep) -> Page[ApiKeyRead]:
    return await services.api_keys.list(principal.user.id, limit=page.limit, cursor=page.cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, principal: CurrentPrincipal, services: ServicesDep) -> ApiKeyCreated:
    """Mint a key. Store `api_key` now: it is never shown again."""
    return await services.api_keys.create(principal, body)


@router.get("/{key_id}", responses=NOT_FOUND)
async def get_api_key(key_id: str, principal: CurrentPrincipal, services: ServicesDep) -> ApiKeyRead:
    return await services.api_keys.get(principal.user.id, key_id)


@router.patch("/{key_id}", responses=NOT_FOUND)
async def update_api_key(
    key_id: str, body: ApiKeyUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> ApiKeyRead:
    """Rename, or deactivate/reactivate, a key."""
    return await services.api_keys.update(principal.user.id, key_id, body)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def revoke_api_key(key_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """Revoke a key for good; calls with it fail at once."""
    await services.api_keys.revoke(principal.user.id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
