"""A user's own stdio MCP server runs inside one of their sandboxes (its stdin and stdout through the backend's
terminal in raw mode), on both backends: registered by a user who is not an admin, tested, called over the API
and from chat; another user's sandbox is refused; a destroyed sandbox is a clear error."""

from __future__ import annotations

import httpx
import pytest

from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step

MCP = "/api/v1/agent/mcp"
SANDBOXES = "/api/v1/agent/sandboxes"
# A whole MCP stdio server in the standard library (the sandbox has no SDK): newline-delimited JSON-RPC.
SERVER = r"""
import json, os, sys
TOOLS = [{"name": "shout", "description": "Upper-case a text", "inputSchema": {"type": "object",
          "properties": {"text": {"type": "string"}}, "required": ["text"]}}]
for line in sys.stdin:
    message = json.loads(line)
    method, ident = message.get("method"), message.get("id")
    if ident is None:
        continue
    if method == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                  "serverInfo": {"name": "shouter", "version": "0.1"}}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        text = message["params"]["arguments"]["text"]
        print("calling shout", file=sys.stderr)
        result = {"content": [{"type": "text", "text": text.upper() + " (in " + os.getcwd() + ")"}]}
    else:
        error = {"code": -32601, "message": "no " + method}
        print(json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}), flush=True)
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}), flush=True)
"""


@pytest.fixture(params=["local", "docker"])
def sandbox_settings(request: pytest.FixtureRequest) -> dict:  # type: ignore[type-arg]
    extra = {"docker_host": request.getfixturevalue("docker_engine")} if request.param == "docker" else {}
    return {"backend": request.param, "warm_pool": {request.param: 0}, "default_memory_mb": 256, **extra}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_users_stdio_server_runs_in_their_sandbox(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    await make_account()  # the admin
    user = await make_account()
    other = await make_account()
    sandbox_id = (await client.post(SANDBOXES, json={}, headers=user.headers)).json()["id"]
    put = await client.put(
        f"{SANDBOXES}/{sandbox_id}/files?path=shouter.py", content=SERVER.encode(), headers=user.headers
    )
    assert put.status_code == 200, put.text
    body = {
        "name": "shouter",
        "transport": "stdio",
        "command": "python3",
        "args": ["shouter.py"],
        "sandbox_id": sandbox_id,
    }

    refused = await client.post(f"{MCP}/servers", json=body, headers=other.headers)
    assert refused.status_code == 404, refused.text  # not their sandbox
    created = await client.post(f"{MCP}/servers", json=body, headers=user.headers)
    assert created.status_code == 201, created.text
    server = created.json()
    assert server["status"] == "ok" and server["tool_count"] == 1 and server["sandbox_id"] == sandbox_id, server

    called = await client.post(
        f"{MCP}/servers/{server['id']}/tools/shout/call", json={"arguments": {"text": "hi"}}, headers=user.headers
    )
    assert called.status_code == 200 and called.json()["text"] == "HI (in /workspace)", called.text
    stderr = await client.post(
        f"{SANDBOXES}/{sandbox_id}/exec", json={"command": "cat /tmp/.agent-ui-stdio.log"}, headers=user.headers
    )
    assert "calling shout" in stderr.json()["stdout"]

    upstream.push(Step(tool_calls=[("shouter_shout", {"text": "from chat"})]), Step(text=["Done."]))
    events = parse(
        (
            await client.post(
                "/api/v1/agent/chat/stream", json={"message": "shout", "tools": ["mcp"]}, headers=user.headers
            )
        ).text
    )
    result = next(e.data for e in events if e.type == "tool_result")
    assert result["ok"] is True and result["output"]["text"] == "FROM CHAT (in /workspace)", result

    assert (await client.delete(f"{SANDBOXES}/{sandbox_id}", headers=user.headers)).status_code == 204
    tested = (await client.post(f"{MCP}/servers/{server['id']}/test", headers=user.headers)).json()
    assert tested["ok"] is False and "gone or not running" in tested["error"]["message"], tested
