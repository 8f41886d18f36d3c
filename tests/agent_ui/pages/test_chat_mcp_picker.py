"""The composer's MCP server picker through the NiceGUI `user` fixture, with the real notes server over stdio and the
scripted upstream: shown only when a server is usable, a checked server's tools reach the model and an unchecked
one's do not, and a tool call on it shows its card with what the server said."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User

from services.auth import Principal
from services.mcp import McpRegistry
from services.mcp.schemas import ServerCreate, ServerRead
from tests.agent_ui.pages.test_auth_pages import PASSWORD, register_in_ui
from tests.agent_ui.pages.test_chat_page import answered, app_services, ask, marked
from tests.upstream import ScriptedUpstream, Step, words

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NOTES_SERVER = Path(__file__).resolve().parents[2] / "services" / "mcp" / "servers" / "notes_server.py"
ADMIN = "admin@example.com"


async def me(email: str) -> Principal:
    """The signed-in user as the services see them (the first account is an admin: the role comes from the
    database)."""
    found = await app_services().auth.verify_credentials(email, PASSWORD)
    return Principal(user=found, via="session", credential_id="test")


async def with_notes_server(user: User) -> ServerRead:
    """Sign up (as the admin), register the notes server over stdio, and open a new chat."""
    await register_in_ui(user, ADMIN)
    await user.should_see(marker="empty-thread", retries=100)
    registry = app_services().get(McpRegistry)
    server = await registry.create(
        await me(ADMIN),
        ServerCreate(name="notes", transport="stdio", command=sys.executable, args=[str(NOTES_SERVER)]),
    )
    assert server.status == "ok" and server.tool_count > 1, server
    await user.open("/")
    await user.should_see(marker="mcp-picker", retries=100)
    return server


def offered(request: dict[str, Any]) -> set[str]:
    """The tool names a request to the model offered."""
    return {tool["function"]["name"] for tool in request.get("tools") or []}


def option(user: User, server_id: str) -> ui.checkbox:
    (box,) = marked(user, f"mcp-option-{server_id}")
    assert isinstance(box, ui.checkbox)
    return box


def picker_name(user: User) -> str:
    (button,) = marked(user, "mcp-picker")
    return str(button.props["aria-label"])


@SQLITE_ONLY  # the page's behaviour; the chat service's tests run both databases
async def test_no_picker_without_a_usable_server(ui_env: str, user: User) -> None:
    await register_in_ui(user, ADMIN)
    await user.should_see(marker="empty-thread", retries=100)
    await user.should_see(marker="send")
    assert marked(user, "mcp-picker") == []


@SQLITE_ONLY
async def test_a_checked_server_offers_its_tools_and_an_unchecked_one_does_not(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    server = await with_notes_server(user)
    server_id = server.id
    assert option(user, server_id).value is True  # all on at first
    (count,) = marked(user, "mcp-tool-count")
    assert count.text == f"{server.tool_count} tools"  # type: ignore[attr-defined]
    assert picker_name(user) == "MCP servers: all 1 of 1 on"
    (badge,) = marked(user, "mcp-picker-count")
    assert not badge.visible

    upstream.push(Step(text=words("With notes.")))
    await ask(user, "Which tools do you have?")
    await answered(user, "With notes.")
    assert {"notes_add_note", "notes_list_notes", "calculator"} <= offered(upstream.requests[-1])

    user.find(marker=f"mcp-option-{server_id}").click()  # off for the turns that follow
    assert option(user, server_id).value is False
    assert picker_name(user) == "MCP servers: 0 of 1 on"
    assert badge.visible and badge.text == "0"  # type: ignore[attr-defined]
    upstream.push(Step(text=words("Without notes.")))
    await ask(user, "And now?")
    await answered(user, "Without notes.")
    tools = offered(upstream.requests[-1])
    assert "calculator" in tools  # the other groups stay
    assert not any(name.startswith("notes_") for name in tools)

    upstream.push(Step(text=words("Again without notes.")))
    user.find(marker="regenerate").click()  # a regeneration keeps the choice too
    await answered(user, "Again without notes.")
    assert not any(name.startswith("notes_") for name in offered(upstream.requests[-1]))

    user.find(marker=f"mcp-option-{server_id}").click()  # on again
    assert not badge.visible
    upstream.push(Step(text=words("Notes again.")))
    await ask(user, "Once more?")
    await answered(user, "Notes again.")
    assert "notes_add_note" in offered(upstream.requests[-1])


@SQLITE_ONLY
async def test_an_mcp_tool_call_shows_its_card_with_the_servers_answer(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await with_notes_server(user)
    upstream.push(Step(tool_calls=[("notes_add_note", {"text": "x"})]), Step(text=words("Noted it.")))
    await ask(user, "Note x")
    await answered(user, "Noted it.")
    (card,) = marked(user, "tool-card")
    assert isinstance(card, ui.expansion)
    assert card.text.startswith("notes · notes_add_note") and "failed" not in card.text
    (result,) = marked(user, "tool-result")
    assert result.text == "noted: x"  # type: ignore[attr-defined]
    assert "noted: x" in str(upstream.requests[-1]["messages"])  # and the model read it
