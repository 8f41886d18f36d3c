"""What this instance offers."""

from __future__ import annotations

from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from services.agent_config import AgentConfig
from services.auth import Scope

router = api_router(
    prefix="/config", tags=["config"], guard=RequireScope(Scope.CONFIG), responses={401: {"model": ErrorEnvelope}}
)


@router.get("")
async def get_config(principal: CurrentPrincipal, services: ServicesDep) -> AgentConfig:
    """Models, the default model, the tool groups and tools your key may use, capabilities and limits."""
    return await services.agent_config.describe(principal)
