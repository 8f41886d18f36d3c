"""A user's Codex and Claude Code settings written into their new `agents` sandboxes, checked by the real CLIs on
both backends: `claude mcp list` connects to our tool server through the bridge and the socket, `codex mcp list`
lists it, a tool call through the bridge runs a command in that sandbox, and the sandbox's key ends with it."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from services.mcp.provisioning import SOCKET_NAME

SANDBOXES = "/api/v1/agent/sandboxes"
SETTINGS = "/api/v1/agent/user-settings/mcp"
ANTHROPIC_KEY = "sk-ant-api03-provisioned-secret-0042"
OPENAI_KEY = "sk-proj-provisioned-secret-0077"
BRIDGE_CALL = """
import json, subprocess
env = json.load(open('/home/sandbox/.agent-ui/tool-server.json'))['env']
import os
bridge = subprocess.Popen(['agent-ui-mcp-bridge'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          env={**os.environ, **env}, text=True)
def send(message):
    bridge.stdin.write(json.dumps(message) + '\\n'); bridge.stdin.flush()
def answer():
    while True:
        message = json.loads(bridge.stdout.readline())
        if 'id' in message:
            return message
send({'jsonrpc': '2.0', 'id': 1, 'method': 'initialize', 'params': {'protocolVersion': '2025-06-18',
      'capabilities': {}, 'clientInfo': {'name': 'test', 'version': '1'}}})
answer()
send({'jsonrpc': '2.0', 'method': 'notifications/initialized'})
send({'jsonrpc': '2.0', 'id': 2, 'method': 'tools/call', 'params': {'name': 'sandbox_exec',
      'arguments': {'command': 'echo through-the-bridge > /workspace/bridged && cat /workspace/bridged'}}})
print(json.dumps(answer()))
bridge.stdin.close()
"""


@pytest.fixture(params=[{"backend": "docker"}, {"backend": "local"}], ids=["docker", "local"])
def sandbox_settings(request: pytest.FixtureRequest, agents_engine: str) -> dict:  # type: ignore[type-arg]
    return {
        "docker_host": agents_engine,
        "warm_pool": {"docker": 0, "local": 0},
        "default_memory_mb": 512,
        **request.param,
    }


async def run(client: httpx.AsyncClient, headers: dict[str, str], sandbox_id: str, command: str) -> dict:  # type: ignore[type-arg]
    ran = await client.post(
        f"{SANDBOXES}/{sandbox_id}/exec", json={"command": command, "timeout_s": 120}, headers=headers
    )
    assert ran.status_code == 200, ran.text
    return ran.json()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_agents_sandbox_gets_the_users_cli_settings_and_reaches_our_tool_server(
    client: httpx.AsyncClient, make_account, app: FastAPI
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    for tool, key in (("claude_code", ANTHROPIC_KEY), ("codex", OPENAI_KEY)):
        saved = await client.post(f"{SETTINGS}/{tool}", json={"api_key": key}, headers=user.headers)
        assert saved.status_code == 201, saved.text
    created = await client.post(SANDBOXES, json={"template": "agents"}, headers=user.headers)
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]

    claude = await run(client, user.headers, sandbox_id, "claude mcp list 2>&1")
    assert "agent-ui" in claude["stdout"] and "Connected" in claude["stdout"], claude
    codex = await run(client, user.headers, sandbox_id, "codex mcp list --json")
    assert codex["exit_code"] == 0, codex
    listed = json.loads(codex["stdout"])
    assert any(server.get("name") == "agent-ui" for server in listed), listed
    helper = await run(client, user.headers, sandbox_id, "cat /home/sandbox/.claude/api-key; cat ~/.codex/auth.json")
    assert ANTHROPIC_KEY in helper["stdout"] and OPENAI_KEY in helper["stdout"]

    bridged = await run(client, user.headers, sandbox_id, f'python3 -c "{BRIDGE_CALL}"')
    assert bridged["exit_code"] == 0, bridged
    result = json.loads(bridged["stdout"])["result"]
    assert result["isError"] is False and "through-the-bridge" in json.dumps(result), result

    sandbox_key = json.loads(
        (await run(client, user.headers, sandbox_id, "cat ~/.agent-ui/tool-server.json"))["stdout"]
    )["env"]["AGENT_UI_MCP_KEY"]
    assert sandbox_key.startswith("sk_")
    keys = (await client.get("/api/v1/agent/api-keys", headers=user.headers)).json()["items"]
    assert any(k["sandbox_id"] == sandbox_id and sorted(k["scopes"]) == ["mcp", "sandboxes"] for k in keys), keys

    assert (await client.delete(f"{SANDBOXES}/{sandbox_id}", headers=user.headers)).status_code == 204
    refused = await client.get("/api/v1/agent/config", headers={"Authorization": f"Bearer {sandbox_key}"})
    assert refused.status_code == 401, refused.text
    socket_path = app.state.services.core.provisioners.mounts()[0].host_path + "/" + SOCKET_NAME
    async with httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=socket_path), base_url="http://localhost"
    ) as over_socket:
        gone = await over_socket.post(
            "/api/v1/agent/mcp/tool-server/",
            headers={"Authorization": f"Bearer {sandbox_key}"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert gone.status_code == 401
        unbound = await over_socket.post(
            "/api/v1/agent/mcp/tool-server/",
            headers=user.headers,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert unbound.status_code == 401 and "sandboxes only" in unbound.text
