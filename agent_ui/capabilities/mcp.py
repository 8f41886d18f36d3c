"""MCP: servers and their tools (REST and chat), the users' CLI settings, our own tool server."""

from agent_ui.api.v1 import mcp as mcp_api
from agent_ui.api.v1 import mcp_settings as mcp_settings_api
from agent_ui.capabilities import WebCapability
from agent_ui.components.mcp_tool_card import mcp_tool_card
from agent_ui.mcp_tool_server import mount_tool_server
from services.mcp import McpCapability

CAPABILITY = WebCapability(
    name="mcp",
    build=McpCapability,
    routers=[mcp_api.router, mcp_settings_api.router],
    mount=mount_tool_server,
    tool_cards={"mcp": mcp_tool_card},
)
