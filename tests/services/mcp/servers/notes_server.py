"""A small real MCP server for the client pool tests.

Run over stdio by default; `--transport streamable-http --port N [--token T]` serves HTTP on 127.0.0.1, and with a
token every request without `Authorization: Bearer T` gets a 401 (a real protected MCP endpoint).
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Receive, Scope, Send

server = MCPServer("notes", version="1.2.3")
notes: list[str] = []


@server.tool()
def add_note(text: str) -> str:
    """Store a note in this process."""
    notes.append(text)
    return f"noted: {text}"


@server.tool()
def list_notes() -> str:
    """The notes stored so far, one a line."""
    return "\n".join(notes)


@server.tool()
def fail() -> str:
    """Always fails: the tool's own error result."""
    raise ToolError("the notebook is on fire")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, and leave a note when the client cancelled the call."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        notes.append(f"slow({seconds}) cancelled")
        raise
    return f"slept {seconds}"


@server.tool()
async def nap(seconds: float) -> str:
    """Sleep; a note says when it started and when the client cancelled it (for the chat's stop test)."""
    notes.append(f"nap({seconds}) started")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        notes.append(f"nap({seconds}) cancelled")
        raise
    return f"napped {seconds}"


@server.tool()
def env(name: str) -> str:
    """The value of one environment variable ("<unset>" when missing)."""
    return os.environ.get(name, "<unset>")


@server.tool()
def pid() -> int:
    """This server's process id (the tests check it is gone after stop)."""
    return os.getpid()


@server.tool()
def crash(code: int) -> str:
    """Exit the process at once, mid-call."""
    sys.stderr.write(f"crashing with {code}\n")
    sys.stderr.flush()
    os._exit(code)


class RequireBearer:
    """ASGI wrapper answering 401 to HTTP requests without the expected bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    options = parser.parse_args()
    if options.transport == "stdio":
        server.run()
        return
    app: ASGIApp = server.sse_app() if options.transport == "sse" else server.streamable_http_app()
    if options.token:
        app = RequireBearer(app, options.token)
    uvicorn.run(app, host="127.0.0.1", port=options.port, log_level="warning")


if __name__ == "__main__":
    main()
