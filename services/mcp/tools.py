"""The tools of a user's MCP servers, offered to chat (group ``mcp``, source ``mcp:<server>``).

Each server's tools are the ones its last connection listed (a test, or the connection made when it was
added), so starting a turn never waits on a server. Names become ``<server>_<tool>`` in the characters a
model's tool name allows, cut to 64 and numbered where two would clash. Arguments are checked against the
server's JSON schema before the call; a tool's own error result comes back to the model as a failed call.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.mcp.client import CallResult
from services.mcp.models import McpServer
from services.mcp.registry import McpRegistry
from services.tools import AnyArguments, Tool, ToolContext, ToolGroup

MCP = ToolGroup("mcp", Scope.MCP, "the tools of your MCP servers")
MAX_TEXT = 20_000
UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class McpToolError(Exception):
    """The server ran the tool and it reported an error (the model reads the text)."""


def tool_names(pairs: list[tuple[str, str]]) -> list[str]:
    """One name per (server, tool), unique, each matching ``^[A-Za-z0-9_-]{1,64}$``."""
    taken: set[str] = set()
    names = []
    for server, tool in pairs:
        base = (UNSAFE.sub("_", f"{server}_{tool}").strip("_") or "tool")[:64]
        name, n = base, 1
        while name.lower() in taken:
            n += 1
            suffix = f"_{n}"
            name = base[: 64 - len(suffix)] + suffix
        taken.add(name.lower())
        names.append(name)
    return names


def describe_call(_arguments: dict[str, Any], output: dict[str, Any]) -> str:
    return str(output.get("text") or "The tool returned nothing.")


class McpTools:
    def __init__(self, registry: McpRegistry) -> None:
        self._registry = registry

    def groups(self) -> list[ToolGroup]:
        return [MCP]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        servers = await self._registry.usable(principal)
        listed = [(server, tool) for server in servers for tool in server.tools]
        names = tool_names([(server.name, str(tool["name"])) for server, tool in listed])
        return [self._tool(name, server, tool) for name, (server, tool) in zip(names, listed, strict=True)]

    def _tool(self, name: str, server: McpServer, listed: dict[str, Any]) -> Tool:
        schema = listed.get("input_schema") or {"type": "object"}
        remote = str(listed["name"])

        async def call(arguments: AnyArguments, context: ToolContext) -> dict[str, Any]:
            given = arguments.model_dump()
            try:
                jsonschema.validate(given, schema)
            except jsonschema.ValidationError as exc:
                where = ".".join(str(part) for part in exc.absolute_path) or "arguments"
                raise ValueError(f"invalid arguments: {where}: {exc.message}") from None
            except jsonschema.SchemaError:
                pass  # the server's schema is broken; let the server judge the arguments
            result: CallResult = await self._registry.call_server(server, remote, given)
            text = result.text()[:MAX_TEXT]
            if result.is_error:
                raise McpToolError(text or "the tool reported an error")
            return {"text": text, "content": result.content, "structured": result.structured}

        description = str(listed.get("description") or remote)[:1000]
        return Tool(
            name=name,
            description=f"{description} (MCP server {server.name})",
            args=AnyArguments,
            group=MCP,
            handler=call,
            source=f"mcp:{server.name}",
            timeout_s=120,
            describe=describe_call,
            input_schema=schema,
            subject=server.id,
        )
