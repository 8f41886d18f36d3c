"""The MCP stdio bridge against a real MCP server (the SDK's, served by uvicorn on a unix socket), driven by the
SDK's own client launching the bridge as a subprocess: both protocol eras, JSON and SSE answers, a refused key."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Annotated, Any, TextIO

import pytest
import uvicorn
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from pydantic import Field

ROOT = Path(__file__).resolve().parents[3]
BRIDGE = ROOT / "services" / "sandbox" / "bridge" / "mcp_bridge.py"
PYTHON = ROOT / ".venv" / "bin" / "python"
URL = "http://localhost/api/v1/agent/mcp/tool-server/"
KEY = "sk_bridge-test-key"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def tool_server(cancelled: list[str] | None = None) -> MCPServer:
    server = MCPServer("bridge-test", version="1.0")

    @server.tool()
    async def slow(label: str) -> str:
        """Take a long time, noting when the call is cancelled."""
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if cancelled is not None:
                cancelled.append(label)
            raise
        return "finished"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool()
    async def count(to: int, ctx: Context) -> str:
        """Count, reporting progress on the way (notifications in the middle of a call's stream)."""
        for step in range(1, to + 1):
            await ctx.report_progress(step, to)
        return f"counted to {to}"

    @server.tool()
    def where(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], text: str) -> str:
        """A tool whose argument is mirrored in an Mcp-Param header (checked by the server on the 2026 wire)."""
        return f"{text} in {region}"

    return server


class RequireBearer:
    """The tool server's guard in miniature: HTTP requests without the right bearer token get a 401."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], key: str) -> None:
        self._app = app
        self._key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        bearer = f"Bearer {self._key}".encode()
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != bearer:
            body = json.dumps({"error": {"code": "unauthorized", "message": "invalid API key"}}).encode()
            headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)


@contextlib.asynccontextmanager
async def serving(socket_path: Path, *, json_response: bool = False,
                  cancelled: list[str] | None = None) -> AsyncIterator[None]:  # fmt: skip
    """The MCP server mounted where agent-ui's tool server will be, on a unix socket, behind the bearer guard."""
    app = tool_server(cancelled).streamable_http_app(
        streamable_http_path="/api/v1/agent/mcp/tool-server/",
        json_response=json_response,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    config = uvicorn.Config(RequireBearer(app, KEY), uds=str(socket_path), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def bridge_client(
    socket_path: Path, errlog: TextIO, *, key: str | None = KEY, mode: str = "legacy", url: str = URL
) -> Client:
    env = {"AGENT_UI_MCP_URL": url, "AGENT_UI_MCP_SOCKET": str(socket_path)}
    if key is not None:
        env["AGENT_UI_MCP_KEY"] = key
    params = StdioServerParameters(command=str(PYTHON), args=[str(BRIDGE)], env=env)
    return Client(stdio_client(params, errlog=errlog), mode=mode)


def mcp_error(exc: BaseException) -> MCPError | None:
    """The MCP error inside what the client raised (it may come wrapped in exception groups)."""
    if isinstance(exc, MCPError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        if (found := mcp_error(inner)) is not None:
            return found
    return mcp_error(exc.__cause__) if exc.__cause__ is not None else None


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "mcp.sock"


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "bridge.stderr").open("w+") as handle:
        yield handle


@pytest.mark.parametrize(
    ("mode", "json_response", "era"),
    [("legacy", False, "2025-11-25"), ("legacy", True, "2025-11-25"), ("auto", False, "2026-07-28")],
    ids=["handshake-sse", "handshake-json", "envelope-sse"],
)
async def test_tools_are_listed_and_called_through_the_bridge(
    socket_path: Path, errlog: TextIO, mode: str, json_response: bool, era: str
) -> None:
    reported: list[tuple[float, float | None]] = []

    class Progress:
        async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
            reported.append((progress, total))

    server = serving(socket_path, json_response=json_response)
    async with server, asyncio.timeout(60), bridge_client(socket_path, errlog, mode=mode) as client:
        assert client.protocol_version == era
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == {"add", "count", "where", "slow"}
        added = await client.call_tool("add", {"a": 2, "b": 40})
        assert not added.is_error and added.content[0].text == "42"  # type: ignore[union-attr]
        counted = await client.call_tool("count", {"to": 3}, progress_callback=Progress())
        assert counted.content[0].text == "counted to 3"  # type: ignore[union-attr]
        # Mcp-Param-Region is mirrored from the arguments (a non-ASCII value base64-wrapped), else the 2026
        # server refuses the call.
        placed = await client.call_tool("where", {"region": "Zürich", "text": "hello"})
        assert not placed.is_error and placed.content[0].text == "hello in Zürich"  # type: ignore[union-attr]
        wrong = await client.call_tool("add", {"a": "two", "b": 1})
        assert wrong.is_error
    if not json_response:  # a JSON answer carries only the response: the notifications have no channel
        assert reported == [(1, 3), (2, 3), (3, 3)]
    errlog.seek(0)
    assert errlog.read() == ""


async def test_many_calls_at_once_each_get_their_own_answer(socket_path: Path, errlog: TextIO) -> None:
    async with serving(socket_path), asyncio.timeout(60), bridge_client(socket_path, errlog) as client:
        results = await asyncio.gather(*(client.call_tool("add", {"a": n, "b": 1000}) for n in range(20)))
        assert [r.content[0].text for r in results] == [str(n + 1000) for n in range(20)]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_cancelled_call_ends_on_the_server_and_the_session_goes_on(
    socket_path: Path, errlog: TextIO, mode: str
) -> None:
    cancelled: list[str] = []
    server = serving(socket_path, cancelled=cancelled)
    async with server, asyncio.timeout(30), bridge_client(socket_path, errlog, mode=mode) as client:
        await client.list_tools()
        call = asyncio.create_task(client.call_tool("slow", {"label": "first"}))
        await asyncio.sleep(0.5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        added = await client.call_tool("add", {"a": 1, "b": 1})
        assert added.content[0].text == "2"  # type: ignore[union-attr]
        for _ in range(100):
            if cancelled:
                break
            await asyncio.sleep(0.05)
        assert cancelled == ["first"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("key", ["sk_wrong", None], ids=["wrong-key", "no-key"])
async def test_a_refused_key_is_a_clear_error_and_nothing_hangs(
    socket_path: Path, errlog: TextIO, mode: str, key: str | None
) -> None:
    async with serving(socket_path), asyncio.timeout(30):
        with pytest.raises(BaseException) as raised:  # the MCP error comes wrapped
            async with bridge_client(socket_path, errlog, key=key, mode=mode):
                pass
    error = mcp_error(raised.value)
    assert error is not None, raised.value
    assert "unauthorized" in str(error) and "HTTP 401" in str(error)
    errlog.seek(0)
    said = errlog.read()
    assert "agent-ui-mcp-bridge: initialize: unauthorized" in said
    assert "sk_wrong" not in said and "sk_wrong" not in str(error)


async def test_a_wrong_path_is_a_clear_error(socket_path: Path, errlog: TextIO) -> None:
    async with serving(socket_path), asyncio.timeout(30):
        with pytest.raises(BaseException) as raised:  # the MCP error comes wrapped
            async with bridge_client(socket_path, errlog, url="http://localhost/api/v1/agent/mcp/nothing/"):
                pass
    error = mcp_error(raised.value)
    assert error is not None, raised.value
    assert str(error) == "Not Found: nothing answers at /api/v1/agent/mcp/nothing/ on the tool server"


async def test_a_missing_server_is_a_clear_error(socket_path: Path, errlog: TextIO) -> None:
    async with asyncio.timeout(30):
        with pytest.raises(BaseException) as raised:
            async with bridge_client(socket_path, errlog):
                pass
    error = mcp_error(raised.value)
    assert error is not None, raised.value
    assert f"cannot reach the tool server at unix socket {socket_path}" in str(error)


async def test_the_bridge_refuses_to_start_without_a_url() -> None:
    process = await asyncio.create_subprocess_exec(
        str(PYTHON), str(BRIDGE), env={}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 2 and out == b"" and b"AGENT_UI_MCP_URL is not set" in err
