"""What this instance offers."""

from __future__ import annotations

from agent_ui.deps import RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from services.agent_config import AgentConfig
from services.auth import Scope

router = api_router(
    prefix="/config", tags=["config"], guard=RequireScope(Scope.CONFIG), responses={401: {"model": ErrorEnvelope}}
)


@router.get("")
async def get_config(services: ServicesDep) -> AgentConfig:
    """Models, the default model, tool groups, capabilities and limits."""
    return services.agent_config.describe()
