"""MCP as a capability: the server registry and its client pool, the users' CLI settings, the chat tools of
their servers, and our own tool server (mounted by the web layer)."""

from __future__ import annotations

from typing import Any

from services.capabilities import Capability, CapabilityInfo, Core, DependencyHealth
from services.clock import utcnow
from services.mcp.client import McpClientPool
from services.mcp.provisioning import McpProvisioner, socket_dir
from services.mcp.registry import McpRegistry
from services.mcp.tool_server import ToolServer
from services.mcp.tools import McpTools
from services.mcp.user_settings import McpSettingsService
from services.provisioning import Provisioner
from services.tools import ToolProvider

# Where the web layer puts an authenticated caller in a tool-server request's ASGI scope.
PRINCIPAL_SCOPE_KEY = "agent_ui.principal"


def principal_in_scope(request: Any) -> Any:
    return request.scope[PRINCIPAL_SCOPE_KEY]


class McpCapability(Capability):
    name = "mcp"

    def __init__(self, core: Core) -> None:
        settings = core.settings.mcp
        self.registry: McpRegistry | None = None
        self.user_settings: McpSettingsService | None = None
        self.tool_server: ToolServer | None = None
        self.provisioner: McpProvisioner | None = None
        if not settings.enabled:
            return
        pool = McpClientPool(
            connect_timeout_s=settings.connect_timeout_s, call_timeout_s=settings.call_timeout_s, idle_s=settings.idle_s
        )
        self.registry = McpRegistry(db=core.db, vault=core.vault, pool=pool, settings=settings,
                                    references=core.references, sandboxes=core.provisioners, clock=utcnow)
        self.user_settings = McpSettingsService(db=core.db, vault=core.vault, clock=utcnow)
        self.tool_server = ToolServer(catalog=core.tools, principal_of=principal_in_scope, version=core.version)
        self.provisioner = McpProvisioner(
            user_settings=self.user_settings, api_keys=core.api_keys, socket_dir=socket_dir(core.instance.id)
        )

    def services(self) -> list[object]:
        return [s for s in (self.registry, self.user_settings, self.tool_server, self.provisioner) if s is not None]

    async def stop(self) -> None:
        if self.registry is not None:
            await self.registry.stop()  # stdio servers end with the app

    def info(self) -> CapabilityInfo:
        if self.registry is None:
            return CapabilityInfo(enabled=False, detail="disabled")
        return CapabilityInfo(enabled=True, detail="MCP servers (stdio, SSE, streamable HTTP) and our tool server")

    async def health(self) -> dict[str, DependencyHealth]:
        if self.registry is None:
            return {"mcp": DependencyHealth(status="not_configured", detail="MCP is disabled")}
        return {"mcp": DependencyHealth(status="ok", detail="registry ready")}

    def provisioners(self) -> list[Provisioner]:
        return [self.provisioner] if self.provisioner is not None else []

    def tool_providers(self) -> list[ToolProvider]:
        return [McpTools(self.registry)] if self.registry is not None else []
