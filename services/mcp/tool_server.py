"""Our own MCP server: the tools a caller may use, served over streamable HTTP to MCP clients (the agent CLIs in
a sandbox, a user's own client) with an ``sk_`` key.

Tools come from the same catalog chat uses, per caller, so scopes hold the same way: a key without the
``sandboxes`` scope gets no sandbox tools. MCP servers' own tools are not passed through (a client talks to
those directly), which also keeps a sandbox's CLI from calling back into itself. A key bound to a sandbox (the
one each provisioned sandbox gets) runs the sandbox tools in that sandbox only.

The web layer mounts :meth:`ToolServer.asgi` and authenticates each request before it gets here: it puts the
caller's principal where ``principal_of`` finds it on the request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)
from mcp.types import Tool as McpTool

from services.auth.schemas import Principal
from services.tools import Tool, ToolCatalog, ToolContext, run_tool

EXCLUDED_GROUPS = frozenset({"mcp"})


class ToolServer:
    def __init__(self, *, catalog: ToolCatalog, principal_of: Callable[[Any], Principal], version: str) -> None:
        self._catalog = catalog
        self._principal_of = principal_of
        self.server: Server[Any] = Server(
            "agent-ui", version=version, on_list_tools=self._list_tools, on_call_tool=self._call_tool
        )

    async def _tools(self, ctx: Any) -> tuple[Principal, list[Tool]]:
        principal = self._principal_of(ctx.request)
        groups = {group.name for group in self._catalog.groups()} - EXCLUDED_GROUPS
        return principal, await self._catalog.tools_for(principal, groups)

    async def _list_tools(self, ctx: Any, _params: PaginatedRequestParams | None) -> ListToolsResult:
        _principal, tools = await self._tools(ctx)
        return ListToolsResult(
            tools=[
                McpTool(name=tool.name, description=tool.description, input_schema=tool.parameters) for tool in tools
            ]
        )

    async def _call_tool(self, ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        principal, tools = await self._tools(ctx)
        tool = next((tool for tool in tools if tool.name == params.name), None)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"unknown tool {params.name!r}")
        context = ToolContext(principal=principal, run_id="", session_id=None)
        outcome = await run_tool(tool, params.name, json.dumps(params.arguments or {}), context, stop=asyncio.Event())
        text = tool.summary(json.dumps(params.arguments or {}), outcome.ok, outcome.output, outcome.error)
        structured = outcome.output if outcome.ok and isinstance(outcome.output, dict) else None
        return CallToolResult(content=[TextContent(text=text)], structured_content=structured, is_error=not outcome.ok)
