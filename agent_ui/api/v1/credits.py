"""The caller's balance, usage and ledger; admins grant credits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, status

from agent_ui.deps import AdminPrincipal, CurrentPrincipal, PageDep, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from services.auth import Scope
from services.chat import ChatService
from services.chat.schemas import SessionUsage
from services.credits import Balance, GrantRequest, LedgerEntryRead
from services.credits.schemas import DailySpend
from services.db import Page

router = api_router(
    prefix="/credits",
    tags=["credits"],
    guard=RequireScope(Scope.CREDITS),
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}},
)


@router.get("/balance")
async def get_balance(principal: CurrentPrincipal, services: ServicesDep) -> Balance:
    """`balance` is the sum of the ledger; `held` is reserved by running work; `available = balance - held`."""
    return await services.credits.balance(principal.user.id)


@router.get("/usage")
async def list_usage(principal: CurrentPrincipal, services: ServicesDep, page: PageDep) -> Page[SessionUsage]:
    """Credits and tokens used per chat session (deleted sessions included), most recent first."""
    return await services.get(ChatService).usage_page(principal.user.id, limit=page.limit, cursor=page.cursor)


@router.get("/usage/{session_id}", responses={404: {"model": ErrorEnvelope}})
async def session_usage(session_id: str, principal: CurrentPrincipal, services: ServicesDep) -> SessionUsage:
    return await services.get(ChatService).usage(principal.user.id, session_id)


@router.get("/history")
async def history(principal: CurrentPrincipal, services: ServicesDep, page: PageDep) -> Page[LedgerEntryRead]:
    """Ledger entries (`grant`, `charge`, `refund`), newest first, with what caused each."""
    return await services.credits.history(principal.user.id, limit=page.limit, cursor=page.cursor)


@router.get("/spend")
async def spend_by_day(
    principal: CurrentPrincipal, services: ServicesDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[DailySpend]:
    """Credits charged per day (UTC), oldest first, zero days included."""
    return await services.credits.spend_by_day(principal.user.id, days=days)


@router.post("/grant", status_code=status.HTTP_201_CREATED, responses={404: {"model": ErrorEnvelope}})
async def grant(body: GrantRequest, principal: AdminPrincipal, services: ServicesDep) -> LedgerEntryRead:
    """Admin: add credits to a user, by `user_id` or `email`."""
    return await services.credits.grant(principal, body)
