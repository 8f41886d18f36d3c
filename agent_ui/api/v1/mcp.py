"""MCP servers: register (stdio, SSE, streamable HTTP), test, list and call their tools."""

from __future__ import annotations

from fastapi import Path, Response, status

from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from services.auth import Scope
from services.container import Services
from services.mcp import McpRegistry
from services.mcp.schemas import (
    McpToolRead,
    ServerCreate,
    ServerRead,
    ServerTest,
    ServerUpdate,
    ToolCall,
    ToolCallResult,
)

router = api_router(
    prefix="/mcp",
    tags=["mcp"],
    guard=RequireScope(Scope.MCP),
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        503: documented_error("MCP is disabled on this instance (`mcp_disabled`)"),
    },
)
NOT_FOUND = {404: documented_error("no such server of yours or shared with you")}
UNAVAILABLE = {
    503: documented_error(
        "`mcp_unavailable`: the server could not be reached, timed out or failed "
        "(`details.kind`: missing_command, exited, refused, unauthorized, timeout, protocol)"
    )
}
ServerId = Path(max_length=64)


def registry(services: Services) -> McpRegistry:
    return services.get(McpRegistry, "MCP is disabled on this instance", code="mcp_disabled")


@router.get("/servers")
async def list_servers(principal: CurrentPrincipal, services: ServicesDep) -> list[ServerRead]:
    """Your servers and the ones an admin shared, with what their last connection found."""
    return await registry(services).visible(principal)


@router.post(
    "/servers",
    status_code=status.HTTP_201_CREATED,
    responses={
        403: documented_error("`admin_required`: a stdio server on the host (no `sandbox_id`) or `shared: true`"),
        404: documented_error("`sandbox_id` is not one of your sandboxes"),
        409: documented_error("`mcp_server_exists`: you have a server of that name"),
        422: documented_error("`validation_error`; `url_not_allowed`: a private or local address"),
        429: documented_error("`mcp_server_quota`"),
    },
)
async def create_server(request: ServerCreate, principal: CurrentPrincipal, services: ServicesDep) -> ServerRead:
    """Register a server. It is connected once at once: `status`, `tool_count` and `last_error` tell how that
    went (a server that cannot be reached is still saved, with the reason)."""
    return await registry(services).create(principal, request)


@router.get("/servers/{server_id}", responses=NOT_FOUND)
async def get_server(principal: CurrentPrincipal, services: ServicesDep, server_id: str = ServerId) -> ServerRead:
    return await registry(services).get(principal, server_id)


@router.patch(
    "/servers/{server_id}",
    responses={
        **NOT_FOUND,
        403: documented_error("`not_owner`: a shared server; `admin_required`"),
        409: documented_error("`mcp_server_exists`"),
    },
)
async def update_server(
    request: ServerUpdate, principal: CurrentPrincipal, services: ServicesDep, server_id: str = ServerId
) -> ServerRead:
    """Change fields given. `env` and `headers` replace the whole map; a value sent back as shown (redacted) keeps
    the stored one."""
    return await registry(services).update(principal, server_id, request)


@router.delete(
    "/servers/{server_id}",
    status_code=204,
    responses={**NOT_FOUND, 403: documented_error("`not_owner`: a shared server")},
)
async def delete_server(principal: CurrentPrincipal, services: ServicesDep, server_id: str = ServerId) -> Response:
    await registry(services).delete(principal, server_id)
    return Response(status_code=204)


@router.post("/servers/{server_id}/test", responses=NOT_FOUND)
async def test_server(principal: CurrentPrincipal, services: ServicesDep, server_id: str = ServerId) -> ServerTest:
    """Connect afresh, initialize and list the tools: the latency and tools, or the exact error (200 either way)."""
    return await registry(services).test(principal, server_id)


@router.get("/servers/{server_id}/tools", responses={**NOT_FOUND, **UNAVAILABLE})
async def list_tools(
    principal: CurrentPrincipal, services: ServicesDep, server_id: str = ServerId
) -> list[McpToolRead]:
    return await registry(services).tools(principal, server_id)


@router.post(
    "/servers/{server_id}/tools/{name}/call",
    responses={
        404: documented_error("no such server; `mcp_tool_not_found`: the server has no such tool"),
        **UNAVAILABLE,
    },
)
async def call_tool(
    request: ToolCall,
    principal: CurrentPrincipal,
    services: ServicesDep,
    server_id: str = ServerId,
    name: str = Path(max_length=128),
) -> ToolCallResult:
    """Call a tool. A tool's own failure is a 200 with `is_error: true` and its message in `text`."""
    return await registry(services).call(principal, server_id, name, request.arguments)
