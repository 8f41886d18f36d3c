"""MCP: the server registry and client pool, users' CLI settings in the vault, chat tools, our own tool server."""

from services.mcp.capability import PRINCIPAL_SCOPE_KEY, McpCapability
from services.mcp.registry import McpRegistry
from services.mcp.tool_server import ToolServer
from services.mcp.user_settings import McpSettingsService

__all__ = ["PRINCIPAL_SCOPE_KEY", "McpCapability", "McpRegistry", "McpSettingsService", "ToolServer"]
