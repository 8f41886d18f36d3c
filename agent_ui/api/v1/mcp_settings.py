"""Each user's settings for the agent CLIs in their sandboxes (Codex, Claude Code, custom): keys stored
encrypted, returned redacted."""

from __future__ import annotations

from fastapi import Path, Response

from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from services.auth import Scope
from services.container import Services
from services.mcp import McpSettingsService
from services.mcp.schemas import AgentCliSettings, CustomSettings, SettingRead, SettingUpdate

router = api_router(
    prefix="/user-settings/mcp",
    tags=["mcp-settings"],
    guard=RequireScope(Scope.MCP),
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        503: documented_error("MCP is disabled on this instance (`mcp_disabled`)"),
    },
)
NOT_FOUND = {404: documented_error("you have no such setting")}
ToolTypePath = Path(pattern=r"^(codex|claude_code|custom:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$")


def vault(services: Services) -> McpSettingsService:
    return services.get(McpSettingsService, "MCP is disabled on this instance", code="mcp_disabled")


def _saved(response: Response, saved: tuple[SettingRead, bool]) -> SettingRead:
    setting, created = saved
    response.status_code = 201 if created else 200
    return setting


@router.get("")
async def list_settings(principal: CurrentPrincipal, services: ServicesDep) -> list[SettingRead]:
    """Your settings; credentials redacted (`sk-...abcd`)."""
    return await vault(services).of_user(principal)


@router.post("/codex", status_code=201, responses={200: {"model": SettingRead, "description": "replaced"}})
async def save_codex(
    request: AgentCliSettings, response: Response, principal: CurrentPrincipal, services: ServicesDep
) -> SettingRead:
    """The OpenAI key (and optional model and extra MCP servers) Codex gets in your new sandboxes."""
    return _saved(response, await vault(services).save_cli(principal, "codex", request))


@router.post("/claude_code", status_code=201, responses={200: {"model": SettingRead, "description": "replaced"}})
async def save_claude_code(
    request: AgentCliSettings, response: Response, principal: CurrentPrincipal, services: ServicesDep
) -> SettingRead:
    """The Anthropic key (and optional model and extra MCP servers) Claude Code gets in your new sandboxes."""
    return _saved(response, await vault(services).save_cli(principal, "claude_code", request))


@router.post("/custom", status_code=201, responses={200: {"model": SettingRead, "description": "replaced"}})
async def save_custom(
    request: CustomSettings, response: Response, principal: CurrentPrincipal, services: ServicesDep
) -> SettingRead:
    """Stored as tool_type `custom:<name>`; `auth_json` encrypted."""
    return _saved(response, await vault(services).save_custom(principal, request))


@router.patch("/{tool_type}", responses=NOT_FOUND)
async def update_setting(
    request: SettingUpdate, principal: CurrentPrincipal, services: ServicesDep, tool_type: str = ToolTypePath
) -> SettingRead:
    """Toggle `is_active` or edit: `api_key`, `model`, `mcp_servers` (codex, claude_code); `mcp_config`,
    `auth_json` (custom)."""
    return await vault(services).update(principal, tool_type, request)


@router.delete("/{tool_type}", status_code=204, responses=NOT_FOUND)
async def delete_setting(principal: CurrentPrincipal, services: ServicesDep, tool_type: str = ToolTypePath) -> Response:
    await vault(services).delete(principal, tool_type)
    return Response(status_code=204)
