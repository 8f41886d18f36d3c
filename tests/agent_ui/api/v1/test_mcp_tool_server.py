"""Our MCP tool server, served by a real uvicorn and called by the SDK's own client with ``sk_`` keys: the tools a
key may use, a sandbox-bound key acting in its sandbox only, and 401/403 for keys that may not."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.auth.schemas import ApiKeyCreate
from services.auth.scopes import Scope
from services.mcp.client import McpClientPool, McpError, ServerSpec

PATH = "/api/v1/agent/mcp/tool-server/"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
pytestmark = SQLITE_ONLY  # the database plays no part here


@pytest.fixture
def sandbox_settings() -> dict:  # type: ignore[type-arg]
    return {"backend": "local", "warm_pool": {"local": 0}}


def spec(served: str, token: str | None) -> ServerSpec:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return ServerSpec(transport="streamable_http", url=f"http://{served}{PATH}", headers=headers)


async def key(client: httpx.AsyncClient, headers: dict[str, str], *scopes: str) -> dict:  # type: ignore[type-arg]
    created = await client.post("/api/v1/agent/api-keys", json={"name": "mcp", "scopes": list(scopes)}, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()


async def test_a_key_gets_the_tools_its_scopes_allow_and_calls_them(
    client: httpx.AsyncClient, make_account, served: str
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    pool = McpClientPool(connect_timeout_s=5, call_timeout_s=20)
    try:
        chat_only = await key(client, user.headers, "mcp", "chat")
        probe = await pool.probe(spec(served, chat_only["api_key"]))
        assert probe.ok, probe.error
        assert {tool.name for tool in probe.tools} == {"calculator", "current_datetime"}
        result = await pool.call_tool(
            "k1", spec(served, chat_only["api_key"]), "calculator", {"expression": "1234 * 5678"}
        )
        assert not result.is_error and "7006652" in result.text(), result

        wider = await key(client, user.headers, "mcp", "chat", "sandboxes", "rag")
        names = {tool.name for tool in (await pool.probe(spec(served, wider["api_key"]))).tools}
        assert {"sandbox_exec", "calculator"} <= names and not any(n.startswith("mcp") for n in names)
        # Sandbox tools need a sandbox: a key bound to none gets a clear tool error, not a new sandbox.
        unbound = await pool.call_tool("k2", spec(served, wider["api_key"]), "sandbox_exec", {"command": "echo hi"})
        assert unbound.is_error and "bound to a sandbox" in unbound.text()
        assert (await client.get("/api/v1/agent/sandboxes?all=true", headers=user.headers)).json() == []
    finally:
        await pool.stop()


async def test_a_sandbox_bound_key_acts_in_its_own_sandbox(
    client: httpx.AsyncClient, make_account, served: str, app: FastAPI
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    created = await client.post("/api/v1/agent/sandboxes", json={}, headers=user.headers)
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    services = app.state.services
    principal = await services.core.auth.authenticate(user.token)
    bound = await services.core.api_keys.create(
        principal, ApiKeyCreate(name="sandbox", scopes=[Scope.MCP, Scope.SANDBOXES]), sandbox_id=sandbox_id
    )
    pool = McpClientPool(connect_timeout_s=5, call_timeout_s=30)
    try:
        ran = await pool.call_tool(
            "bound",
            spec(served, bound.api_key),
            "sandbox_exec",
            {"command": "echo made here > /workspace/mark && hostname"},
        )
        assert not ran.is_error and "exited with code 0" in ran.text(), ran.text()
        read = await client.get(f"/api/v1/agent/sandboxes/{sandbox_id}/files?path=mark", headers=user.headers)
        assert read.status_code == 200 and read.text.strip() == "made here", read.text
    finally:
        await pool.stop()


async def test_no_wrong_revoked_or_unscoped_key_is_refused(
    client: httpx.AsyncClient, make_account, served: str
) -> None:  # type: ignore[no-untyped-def]
    user = await make_account()
    async with httpx.AsyncClient(base_url=f"http://{served}") as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        accept = {"Accept": "application/json, text/event-stream"}
        for headers in ({}, {"Authorization": "Bearer sk_wrong"}, {"Cookie": "agent_ui_session=x"}):
            refused = await http.post(PATH, json=body, headers={**accept, **headers})
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["error"]["code"] in ("not_authenticated", "invalid_api_key"), refused.text
        no_scope = await key(client, user.headers, "chat")
        forbidden = await http.post(
            PATH, json=body, headers={**accept, "Authorization": f"Bearer {no_scope['api_key']}"}
        )
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "insufficient_scope"

    revoked = await key(client, user.headers, "mcp", "chat")
    pool = McpClientPool(connect_timeout_s=5, call_timeout_s=10)
    try:
        assert (await pool.probe(spec(served, revoked["api_key"]))).ok
        deleted = await client.delete(f"/api/v1/agent/api-keys/{revoked['id']}", headers=user.headers)
        assert deleted.status_code == 204
        probe = await pool.probe(spec(served, revoked["api_key"]))
        assert not probe.ok and probe.error is not None and probe.error.kind == "unauthorized", probe.error
        with pytest.raises(McpError) as failed:
            await pool.call_tool("revoked", spec(served, revoked["api_key"]), "calculator", {"expression": "1+1"})
        assert failed.value.kind == "unauthorized"
    finally:
        await pool.stop()
