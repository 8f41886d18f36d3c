"""MCP servers over the API with real servers: a stdio server written with the SDK for the tests
(tests/services/mcp/servers/notes_server.py) and mcp-server-time; registry rules, errors, secrets, chat tools."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from services.settings import Settings
from tests.sse import parse, types
from tests.upstream import ScriptedUpstream, Step

MCP = "/api/v1/agent/mcp"
STREAM = "/api/v1/agent/chat/stream"
NOTES_SERVER = str(Path(__file__).resolve().parents[3] / "services" / "mcp" / "servers" / "notes_server.py")
SECRET = "s3cr3t-notebook-token-5150"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def notes_server(name: str = "notes", **extra: object) -> dict:  # type: ignore[type-arg]
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": [NOTES_SERVER],
        "env": {"NOTEBOOK_TOKEN": SECRET},
        **extra,
    }


async def register(client: httpx.AsyncClient, headers: dict[str, str], body: dict) -> dict:  # type: ignore[type-arg]
    created = await client.post(f"{MCP}/servers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()


async def test_an_admin_registers_a_stdio_server_and_its_tools_are_listed_and_called(
    client: httpx.AsyncClient, make_account, settings: Settings
) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    server = await register(client, admin.headers, notes_server())
    assert server["status"] == "ok" and server["tool_count"] >= 5 and server["last_latency_ms"] > 0, server
    assert server["env"] == {"NOTEBOOK_TOKEN": "s3...5150"} and SECRET not in json.dumps(server)

    tools = await client.get(f"{MCP}/servers/{server['id']}/tools", headers=admin.headers)
    assert tools.status_code == 200
    add_note = next(tool for tool in tools.json() if tool["name"] == "add_note")
    assert add_note["input_schema"]["properties"]["text"]["type"] == "string"

    called = await client.post(
        f"{MCP}/servers/{server['id']}/tools/add_note/call",
        json={"arguments": {"text": "buy lamp oil"}},
        headers=admin.headers,
    )
    assert called.status_code == 200 and called.json()["text"] == "noted: buy lamp oil", called.text
    # One pooled process: the note is there for the next call. The env reached the process, and stays hidden.
    listed = await client.post(f"{MCP}/servers/{server['id']}/tools/list_notes/call", json={}, headers=admin.headers)
    assert listed.json()["text"] == "buy lamp oil"
    env = await client.post(
        f"{MCP}/servers/{server['id']}/tools/env/call",
        json={"arguments": {"name": "NOTEBOOK_TOKEN"}},
        headers=admin.headers,
    )
    assert env.json()["text"] == SECRET
    failed = await client.post(f"{MCP}/servers/{server['id']}/tools/fail/call", json={}, headers=admin.headers)
    assert failed.status_code == 200 and failed.json()["is_error"] is True
    assert "on fire" in failed.json()["text"]
    missing = await client.post(f"{MCP}/servers/{server['id']}/tools/teleport/call", json={}, headers=admin.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "mcp_tool_not_found", missing.text

    tested = await client.post(f"{MCP}/servers/{server['id']}/test", headers=admin.headers)
    assert tested.status_code == 200 and tested.json()["ok"] is True
    assert tested.json()["server_name"] == "notes" and tested.json()["server_version"] == "1.2.3"

    # Sending the redacted value back keeps the secret; a new value replaces it.
    kept = await client.patch(f"{MCP}/servers/{server['id']}", json={"env": server["env"]}, headers=admin.headers)
    assert kept.status_code == 200, kept.text
    env = await client.post(
        f"{MCP}/servers/{server['id']}/tools/env/call",
        json={"arguments": {"name": "NOTEBOOK_TOKEN"}},
        headers=admin.headers,
    )
    assert env.json()["text"] == SECRET


async def test_mcp_server_time_over_stdio(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    server = await register(
        client,
        admin.headers,
        {
            "name": "time",
            "transport": "stdio",
            "command": sys.executable,
            "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
        },
    )
    assert server["status"] == "ok", server
    now = await client.post(
        f"{MCP}/servers/{server['id']}/tools/get_current_time/call",
        json={"arguments": {"timezone": "Europe/Paris"}},
        headers=admin.headers,
    )
    assert now.status_code == 200 and "Europe/Paris" in now.json()["text"], now.text


async def test_secrets_are_sealed_in_the_database(client: httpx.AsyncClient, make_account, app) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    server = await register(client, admin.headers, notes_server())
    saved = await client.post(
        "/api/v1/agent/user-settings/mcp/claude_code",
        json={"api_key": "sk-ant-api03-verysecretvalue-9876"},
        headers=admin.headers,
    )
    assert saved.status_code == 201 and saved.json()["auth_json"] == {"api_key": "sk-...9876"}, saved.text
    db = app.state.services.core.db
    async with db.transaction(readonly=True) as session:
        connection = await session.connection()
        rows = [
            json.dumps(list(row), default=str)
            for table in ("agent_mcp_servers", "agent_mcp_settings")
            for row in (await connection.execute(sa.text(f"SELECT * FROM {table}"))).all()
        ]
    assert len(rows) == 2 and server["id"] in rows[0]
    assert not any(SECRET in row or "verysecretvalue" in row for row in rows)
    assert all("sealed" in row for row in rows)


@SQLITE_ONLY
async def test_users_may_not_run_host_stdio_servers_share_or_reach_private_addresses(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    await make_account()  # the admin
    user = await make_account()
    stdio = await client.post(f"{MCP}/servers", json=notes_server(), headers=user.headers)
    assert stdio.status_code == 403 and stdio.json()["error"]["code"] == "admin_required"
    for url in ("http://127.0.0.1:5432/", "http://localhost:6379/mcp", "http://10.1.2.3/mcp", "http://[::1]/x"):
        private = await client.post(
            f"{MCP}/servers", json={"name": "db", "transport": "streamable_http", "url": url}, headers=user.headers
        )
        assert private.status_code == 422 and private.json()["error"]["code"] == "url_not_allowed", (url, private.text)
    shared = await client.post(
        f"{MCP}/servers",
        json={"name": "x", "transport": "sse", "url": "https://example.com/", "shared": True},
        headers=user.headers,
    )
    assert shared.status_code == 403
    assert (await client.get(f"{MCP}/servers", headers=user.headers)).json() == []


@SQLITE_ONLY
async def test_invalid_configs_are_422(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    for body in (
        {"name": "a", "transport": "stdio"},  # no command
        {"name": "a", "transport": "streamable_http", "url": "example.com/mcp"},  # no scheme
        {"name": "a", "transport": "sse"},  # no url
        {"name": "a", "transport": "websocket", "url": "https://example.com"},  # unknown transport
        {"name": "a", "transport": "stdio", "command": "x", "url": "https://example.com"},
        {"name": "", "transport": "stdio", "command": "x"},
        {"name": "a", "transport": "stdio", "command": "x", "env": {"BAD NAME": "1"}},
    ):
        response = await client.post(f"{MCP}/servers", json=body, headers=admin.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/json")
    broken = await client.post(
        f"{MCP}/servers", content=b'{"name": "a",', headers={**admin.headers, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    await register(client, admin.headers, notes_server())
    again = await client.post(f"{MCP}/servers", json=notes_server(), headers=admin.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "mcp_server_exists"


@SQLITE_ONLY
async def test_a_server_that_fails_is_saved_with_the_reason_and_nothing_hangs(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    gone = await register(
        client, admin.headers, {"name": "gone", "transport": "stdio", "command": "/nonexistent/mcp-server"}
    )
    assert gone["status"] == "error" and "not found" in gone["last_error"], gone
    exits = await register(
        client,
        admin.headers,
        {"name": "exits", "transport": "stdio", "command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]},
    )
    assert exits["status"] == "error" and "3" in exits["last_error"], exits
    tested = (await client.post(f"{MCP}/servers/{exits['id']}/test", headers=admin.headers)).json()
    assert tested["ok"] is False and tested["error"]["kind"] == "exited", tested
    refused = await register(
        client, admin.headers, {"name": "refused", "transport": "streamable_http", "url": "http://127.0.0.1:9/mcp"}
    )
    assert refused["status"] == "error"
    call = await client.post(f"{MCP}/servers/{refused['id']}/tools/x/call", json={}, headers=admin.headers)
    assert call.status_code == 503 and call.json()["error"]["code"] == "mcp_unavailable", call.text
    assert call.json()["error"]["details"]["kind"] == "refused"


@SQLITE_ONLY
async def test_another_users_server_is_404_and_a_shared_one_is_read_only(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    user = await make_account()
    private = await register(client, admin.headers, notes_server("private"))
    shared = await register(client, admin.headers, notes_server("team", shared=True))
    assert [s["name"] for s in (await client.get(f"{MCP}/servers", headers=user.headers)).json()] == ["team"]
    for method, path in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/test"),
        ("GET", "/tools"),
        ("POST", "/tools/add_note/call"),
    ):
        body = {} if method in ("PATCH", "POST") else None
        response = await client.request(method, f"{MCP}/servers/{private['id']}{path}", json=body, headers=user.headers)
        assert response.status_code == 404, (method, path, response.text)
    seen = (await client.get(f"{MCP}/servers/{shared['id']}", headers=user.headers)).json()
    assert seen["own"] is False and seen["env"] == {"NOTEBOOK_TOKEN": "s3...5150"}
    assert (
        await client.patch(f"{MCP}/servers/{shared['id']}", json={"enabled": False}, headers=user.headers)
    ).status_code == 403
    assert (await client.delete(f"{MCP}/servers/{shared['id']}", headers=user.headers)).status_code == 403
    used = await client.post(
        f"{MCP}/servers/{shared['id']}/tools/add_note/call", json={"arguments": {"text": "hi"}}, headers=user.headers
    )
    assert used.status_code == 200 and used.json()["text"] == "noted: hi"


async def test_a_chat_turn_calls_an_mcp_tool_and_the_composer_can_leave_a_server_out(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    server = await register(client, admin.headers, notes_server("Note Book"))
    upstream.push(Step(tool_calls=[("Note_Book_add_note", {"text": "water the ferns"})]), Step(text=["Noted."]))
    events = parse(
        (
            await client.post(
                STREAM, json={"message": "note: water the ferns", "tools": ["mcp"]}, headers=admin.headers
            )
        ).text
    )
    assert types(events)[-1] == "done", events
    call = next(e.data for e in events if e.type == "tool_call")
    result = next(e.data for e in events if e.type == "tool_result")
    assert call["name"] == "Note_Book_add_note" and result["ok"] is True, result
    assert result["output"]["text"] == "noted: water the ferns"
    offered = {tool["function"]["name"] for tool in upstream.requests[0]["tools"]}
    assert {"Note_Book_add_note", "Note_Book_list_notes"} <= offered

    # Arguments that do not fit the server's schema are refused before the call; a tool's error is a failed result.
    upstream.push(
        Step(tool_calls=[("Note_Book_add_note", {"words": 3})]),
        Step(tool_calls=[("Note_Book_fail", {})]),
        Step(text=["Sorry."]),
    )
    events = parse((await client.post(STREAM, json={"message": "again", "tools": ["mcp"]}, headers=admin.headers)).text)
    results = [e.data for e in events if e.type == "tool_result"]
    assert results[0]["ok"] is False and "text" in results[0]["error"], results
    assert results[1]["ok"] is False and "on fire" in results[1]["error"], results

    # A server that dies mid-call gives the model a failed result saying so; the next call starts it again.
    upstream.push(Step(tool_calls=[("Note_Book_crash", {"code": 7})]), Step(tool_calls=[("Note_Book_list_notes", {})]),
                  Step(text=["It fell over."]))  # fmt: skip
    events = parse((await client.post(STREAM, json={"message": "crash it", "tools": ["mcp"]},
                                      headers=admin.headers)).text)  # fmt: skip
    crashed, again = [e.data for e in events if e.type == "tool_result"]
    assert crashed["ok"] is False and "exited with code 7" in crashed["error"], crashed
    assert again["ok"] is True, again

    upstream.push(Step(text=["No tools."]))
    response = await client.post(
        STREAM, json={"message": "hi", "tools": ["mcp", "builtin"], "mcp_server_ids": []}, headers=admin.headers
    )
    assert response.status_code == 200
    assert not any(
        name.startswith("Note_Book")
        for name in {tool["function"]["name"] for tool in upstream.requests[-1].get("tools") or []}
    )
    assert server["id"]


SETTINGS = "/api/v1/agent/user-settings/mcp"


@SQLITE_ONLY
async def test_cli_settings_are_saved_redacted_toggled_and_private(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    alice = await make_account()
    bob = await make_account()
    first = await client.post(
        f"{SETTINGS}/codex",
        json={
            "api_key": "sk-proj-abcdefghijklmnop-1234",
            "model": "o4-mini",
            "mcp_servers": {"time": {"command": "mcp-server-time"}},
        },
        headers=alice.headers,
    )
    assert first.status_code == 201, first.text
    assert first.json()["auth_json"] == {"api_key": "sk-...1234"}
    assert first.json()["mcp_config"] == {
        "model": "o4-mini",
        "mcp_servers": {"time": {"command": "mcp-server-time", "args": [], "env": {}}},
    }
    again = await client.post(
        f"{SETTINGS}/codex", json={"api_key": "sk-proj-abcdefghijklmnop-5678"}, headers=alice.headers
    )
    assert again.status_code == 200 and again.json()["auth_json"] == {"api_key": "sk-...5678"}
    custom = await client.post(
        f"{SETTINGS}/custom",
        json={"name": "aider", "mcp_config": {"model": "x"}, "auth_json": {"token": "ghp_0123456789abcdef"}},
        headers=alice.headers,
    )
    assert custom.status_code == 201 and custom.json()["tool_type"] == "custom:aider"
    assert custom.json()["auth_json"] == {"token": "gh...cdef"}

    off = await client.patch(f"{SETTINGS}/codex", json={"is_active": False}, headers=alice.headers)
    assert off.status_code == 200 and off.json()["is_active"] is False
    wrong = await client.patch(f"{SETTINGS}/custom:aider", json={"api_key": "sk-1234567890"}, headers=alice.headers)
    assert wrong.status_code == 422
    listed = (await client.get(SETTINGS, headers=alice.headers)).json()
    assert [s["tool_type"] for s in listed] == ["codex", "custom:aider"]
    assert "abcdefghijklmnop" not in json.dumps(listed) and "0123456789abcdef" not in json.dumps(listed)

    assert (await client.get(SETTINGS, headers=bob.headers)).json() == []
    for method in ("PATCH", "DELETE"):
        other = await client.request(
            method, f"{SETTINGS}/codex", json={} if method == "PATCH" else None, headers=bob.headers
        )
        assert other.status_code == 404, other.text
    for body, path in (
        ({"api_key": "short"}, "codex"),
        ({"api_key": "sk-1234567890", "extra": 1}, "claude_code"),
        ({"name": "bad name", "mcp_config": {}}, "custom"),
    ):
        assert (await client.post(f"{SETTINGS}/{path}", json=body, headers=alice.headers)).status_code == 422
    assert (await client.patch(f"{SETTINGS}/cursor", json={}, headers=alice.headers)).status_code == 422
    assert (await client.delete(f"{SETTINGS}/codex", headers=alice.headers)).status_code == 204
    assert (await client.delete(f"{SETTINGS}/codex", headers=alice.headers)).status_code == 404


@SQLITE_ONLY
async def test_stopping_a_turn_cancels_a_running_mcp_call(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    admin = await make_account()
    server = await register(client, admin.headers, notes_server())
    upstream.push(Step(tool_calls=[("notes_nap", {"seconds": 60})]), Step(text=["never asked for"]))
    turn = asyncio.ensure_future(client.post(STREAM, json={"message": "wait", "tools": ["mcp"]}, headers=admin.headers))
    async with asyncio.timeout(20):  # until the server runs the call
        while (
            "nap(60.0) started"
            not in (
                await client.post(f"{MCP}/servers/{server['id']}/tools/list_notes/call", json={}, headers=admin.headers)
            ).text
        ):
            await asyncio.sleep(0.05)
    run_id = (await client.get("/api/v1/agent/chat/sessions", headers=admin.headers)).json()["items"][0][
        "active_run_id"
    ]
    stopped = await client.post(f"/api/v1/agent/runs/{run_id}/stop", headers=admin.headers)
    assert stopped.status_code == 202
    events = parse((await asyncio.wait_for(turn, timeout=20)).text)
    result = next(e.data for e in events if e.type == "tool_result")
    assert result["ok"] is False and result["error"] == "stopped", result
    assert len(upstream.requests) == 1
    async with asyncio.timeout(10):  # the server saw the request cancelled, and the session still serves
        while (
            "nap(60.0) cancelled"
            not in (
                notes := await client.post(
                    f"{MCP}/servers/{server['id']}/tools/list_notes/call", json={}, headers=admin.headers
                )
            ).text
        ):
            await asyncio.sleep(0.05)
    assert notes.status_code == 200
