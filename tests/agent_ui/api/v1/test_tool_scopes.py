"""Tools follow the caller's scopes: a key that may only chat is not offered sandbox tools, cannot ask for them,
and a model that calls one anyway gets a tool error, not a sandbox."""

from __future__ import annotations

import httpx
import pytest

from tests.sse import parse, types
from tests.upstream import ScriptedUpstream, Step

STREAM = "/api/v1/agent/chat/stream"


@pytest.fixture
def sandbox_settings() -> dict:  # type: ignore[type-arg]
    return {"backend": "local", "warm_pool": {"local": 0}}


def offered(request: dict) -> set[str]:  # type: ignore[type-arg]
    return {tool["function"]["name"] for tool in request.get("tools") or []}


async def key_with(client: httpx.AsyncClient, headers: dict[str, str], *scopes: str) -> dict[str, str]:
    created = await client.post("/api/v1/agent/api-keys", json={"name": "k", "scopes": list(scopes)}, headers=headers)
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['api_key']}"}


async def test_a_chat_only_key_gets_no_sandbox_tools_and_cannot_reach_a_sandbox(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    chat_only = await key_with(client, account.headers, "chat")

    asked = await client.post(STREAM, json={"message": "run ls", "tools": ["sandbox"]}, headers=chat_only)
    assert asked.status_code == 403 and asked.json()["error"]["code"] == "insufficient_scope"
    unknown = await client.post(STREAM, json={"message": "hi", "tools": ["teleport"]}, headers=chat_only)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_tool_group"
    assert upstream.requests == []  # refused before anything started

    upstream.push(Step(tool_calls=[("sandbox_exec", {"command": "echo escaped > /workspace/out"})]),
                  Step(text=["I could not run it."]))  # fmt: skip
    events = parse((await client.post(STREAM, json={"message": "run it"}, headers=chat_only)).text)
    assert types(events) == ["run", "usage", "tool_call", "tool_result", "content.delta", "usage", "done"]
    result = next(e.data for e in events if e.type == "tool_result")
    assert result["ok"] is False and "not offered" in result["error"]
    assert offered(upstream.requests[0]) == {"calculator", "current_datetime"}
    assert (await client.get("/api/v1/agent/sandboxes?all=true", headers=account.headers)).json() == []

    config = (await client.get("/api/v1/agent/config", headers=await key_with(client, account.headers, "chat",
                                                                                "config"))).json()  # fmt: skip
    assert config["tool_groups"] == ["builtin"]
    allowed = {group["name"]: group["allowed"] for group in config["tool_group_details"]}
    assert allowed == {"builtin": True, "sandbox": False, "rag": False, "mcp": False, "generation": False}


async def test_a_key_with_the_sandboxes_scope_is_offered_them(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    both = await key_with(client, account.headers, "chat", "sandboxes")
    upstream.push(Step(text=["ok"]))
    response = await client.post(STREAM, json={"message": "hi", "tools": ["sandbox"]}, headers=both)
    assert response.status_code == 200, response.text
    assert offered(upstream.requests[0]) == {"sandbox_exec", "sandbox_write_file", "sandbox_read_file"}
