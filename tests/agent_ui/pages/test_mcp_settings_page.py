"""Settings → MCP servers and Settings → Integrations with real MCP servers (the notes server over stdio, a
command that exits): add through the form, the row's status and tool count, Test, disable, edit, delete, errors
as notifications; stdio on the host only for admins, in one of their sandboxes for everyone (a stdlib-only
server in a local-backend sandbox); a provider key shown redacted and never in full anywhere in the page."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from nicegui import ElementFilter
from nicegui.element import Element
from nicegui.testing import User

from agent_ui.components.mcp import (
    HOST,
    HOST_LABEL,
    STDIO_NOTE,
    FormError,
    args_text,
    parse_args,
    parse_json_object,
    parse_pairs,
)
from services.auth import Principal
from services.mcp import McpRegistry, McpSettingsService
from services.sandbox import SandboxService
from services.sandbox.schemas import SandboxCreate
from tests.agent_ui.api.v1.test_mcp_sandbox_stdio import SERVER as SHOUTER_SERVER
from tests.agent_ui.pages.test_auth_pages import PASSWORD, register_in_ui
from tests.agent_ui.pages.test_chat_page import app_services

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NOTES_SERVER = Path(__file__).resolve().parents[2] / "services" / "mcp" / "servers" / "notes_server.py"
# The notes server's tools, read from its source (the page must show what the server offers, whatever it grows).
NOTES_TOOLS = set(re.findall(r"@server\.tool\(\)\n(?:async )?def (\w+)", NOTES_SERVER.read_text()))
CLAUDE_KEY = "sk-ant-api03-Zq8vN3mK7tR2wX9yB4cL6pH1jF5dG0sA-abcd"


async def open_settings(user: User, email: str) -> None:
    await register_in_ui(user, email)
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/settings")
    await user.should_see(marker="mcp-servers", retries=50)


async def me(email: str) -> Principal:
    """The signed-in user as the services see them (the admin too: the role comes from the database)."""
    found = await app_services().auth.verify_credentials(email, PASSWORD)
    return Principal(user=found, via="session", credential_id="test")


def in_order(user: User, marker: str, within: Element | None = None) -> list[Element]:
    assert user.client is not None
    with user.client:
        found = list(ElementFilter(marker=marker, local_scope=False))
    return [e for e in found if within is None or within in e.ancestors()]


def one(user: User, marker: str, within: Element | None = None) -> Element:
    found = in_order(user, marker, within)
    assert len(found) == 1, f"{len(found)} elements marked {marker}"
    return found[0]


def text(element: Element) -> str:
    return str(element.text)  # type: ignore[attr-defined]


def server_rows(user: User) -> dict[str, Element]:
    return {text(one(user, "mcp-server-name", row)): row for row in in_order(user, "mcp-server")}


async def wait_for(user: User, name: str) -> Element:
    for _ in range(300):
        if name in (rows := server_rows(user)):
            return rows[name]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no row for {name}: {list(server_rows(user))}")


def row_marker(row: Element) -> str:
    return next(marker for marker in row._markers if marker.startswith("mcp-server-mcp_"))


def fill_stdio(user: User, name: str, command: str, args: str, env: str = "") -> None:
    user.find(marker="mcp-add-name").clear().type(name)
    user.find(marker="mcp-add-command").clear().type(command)
    user.find(marker="mcp-add-args").clear().type(args)
    user.find(marker="mcp-add-env").clear().type(env)


def everything_shown(user: User) -> str:
    """Every text, value and prop of every element in the page, as one string (what the browser could see)."""
    assert user.client is not None
    parts: list[str] = []
    for element in user.client.elements.values():
        parts += [str(element.props), str(getattr(element, "text", "")), str(getattr(element, "value", ""))]
        parts += [str(child) for child in element._displayed_contents(only_visible=False)]
    return "\n".join(parts)


# -- the form's parsing ----------------------------------------------------------------------------------------------


def test_arguments_one_per_line_or_split_like_a_shell() -> None:
    assert parse_args("-m server --port 8080") == ["-m", "server", "--port", "8080"]
    assert parse_args("--name 'a b'") == ["--name", "a b"]
    assert parse_args("--greeting\nhello world\n\n") == ["--greeting", "hello world"]
    assert parse_args("") == []
    for args in (["one arg with spaces"], ["-m", "x y"], ["plain"], []):
        assert parse_args(args_text(args)) == args
    with pytest.raises(FormError, match="close the quote"):
        parse_args("--name 'unclosed")


def test_env_and_headers_lines() -> None:
    assert parse_pairs("A=1\n\nB = x=y\n", "=", "environment") == {"A": "1", "B": "x=y"}
    assert parse_pairs("Authorization: Bearer t:k", ":", "headers") == {"Authorization": "Bearer t:k"}
    with pytest.raises(FormError, match="Line 2 of the environment is not “KEY=value”"):
        parse_pairs("A=1\nnonsense", "=", "environment")


def test_json_fields_say_where_they_are_wrong() -> None:
    assert parse_json_object('{"a": 1}', "MCP config", required=True) == {"a": 1}
    assert parse_json_object("  ", "secrets", required=False) is None
    with pytest.raises(FormError, match=r"The MCP config is not valid JSON: Expecting .* \(line 1, column \d+\)"):
        parse_json_object('{"a": 1', "MCP config", required=True)
    with pytest.raises(FormError, match="must be a JSON object"):
        parse_json_object("[1, 2]", "MCP config", required=True)
    with pytest.raises(FormError, match="Enter the MCP config"):
        parse_json_object("", "MCP config", required=True)


# -- MCP servers -----------------------------------------------------------------------------------------------------


@SQLITE_ONLY  # the page's behaviour; the database plays no part
async def test_an_admin_adds_tests_disables_and_deletes_a_stdio_server(ui_env: str, user: User) -> None:
    await open_settings(user, "admin@example.com")
    await user.should_see(marker="no-mcp-servers")
    transport = next(iter(user.find(marker="mcp-add-transport").elements))
    assert transport.value == "stdio" and "stdio" in transport.options  # type: ignore[attr-defined]
    where = next(iter(user.find(marker="mcp-add-where").elements))
    assert where.options == {HOST: HOST_LABEL} and where.value == HOST  # type: ignore[attr-defined]  # no sandboxes
    await user.should_see("It runs on the host as the app's own user.")
    fill_stdio(user, "notes", sys.executable, str(NOTES_SERVER), env="NOTES_TOKEN=tok-secret-123456789")
    user.find(marker="mcp-add").click()

    assert {"add_note", "list_notes", "env"} <= NOTES_TOOLS
    row = await wait_for(user, "notes")
    assert text(one(user, "mcp-server-status", row)) == "ok"
    assert text(one(user, "mcp-server-tools", row)) == f"{len(NOTES_TOOLS)} tools"
    assert text(one(user, "mcp-server-owner", row)) == "yours"
    assert text(one(user, "mcp-server-transport", row)) == "stdio"
    assert text(one(user, "mcp-server-target", row)).endswith("notes_server.py")
    assert text(one(user, "mcp-server-runs", row)) == "on the host"
    assert text(one(user, "mcp-server-secrets", row)) == "env NOTES_TOKEN=tok-...6789"  # redacted as the service does
    assert "tok-secret-123456789" not in everything_shown(user)
    await user.should_see(f"Added notes: {len(NOTES_TOOLS)} tools.")

    user.find(marker="mcp-server-test").click()
    await user.should_see(marker="mcp-test-dialog", retries=100)
    assert {text(e) for e in in_order(user, "mcp-test-tool-name")} == NOTES_TOOLS
    await user.should_see("Store a note in this process.")  # add_note's description
    await user.should_see("notes 1.2.3")
    user.find(marker="mcp-test-close").click()

    admin = await me("admin@example.com")
    registry = app_services().find(McpRegistry)
    assert registry is not None
    user.find(marker="mcp-server-enabled").click()
    for _ in range(100):
        if not (await registry.visible(admin))[0].enabled:
            break
        await user.should_see(marker="mcp-servers", retries=1)
    assert (await registry.visible(admin))[0].enabled is False
    row = await wait_for(user, "notes")
    assert one(user, "mcp-server-enabled", row).value is False  # type: ignore[attr-defined]  # the redrawn row

    user.find(marker="mcp-server-delete").click()
    user.find(marker="confirm-mcp-delete").click()
    await user.should_see(marker="no-mcp-servers", retries=100)
    assert await registry.visible(admin) == []


@SQLITE_ONLY
async def test_a_server_that_fails_shows_the_exact_error(ui_env: str, user: User) -> None:
    await open_settings(user, "admin@example.com")
    fill_stdio(user, "broken", sys.executable, "-c \"import sys; sys.stderr.write('no config here\\n'); sys.exit(3)\"")
    user.find(marker="mcp-add").click()
    row = await wait_for(user, "broken")
    assert text(one(user, "mcp-server-status", row)) == "error"
    assert text(one(user, "mcp-server-tools", row)) == "0 tools"
    error = text(one(user, "mcp-server-error", row))
    assert error == "the server exited with code 3: no config here", error
    await user.should_see(f"Added broken, but it does not answer: {error}")

    fill_stdio(user, "missing", "/nonexistent/mcp-server", "")
    user.find(marker="mcp-add").click()
    row = await wait_for(user, "missing")
    assert text(one(user, "mcp-server-error", row)) == "command '/nonexistent/mcp-server' not found"
    with user.scope(marker=row_marker(row)):  # this row's own Test button
        user.find(marker="mcp-server-test").click()
    await user.should_see(marker="mcp-test-error", retries=100)
    assert text(one(user, "mcp-test-error")) == "command '/nonexistent/mcp-server' not found"
    await user.should_see("Could not connect (missing command)")

    user.find(marker="mcp-test-close").click()
    fill_stdio(user, "broken", sys.executable, "x")  # the same name again: the service's refusal, as a notification
    user.find(marker="mcp-add").click()
    await user.should_see("you already have an MCP server named 'broken'", retries=50)
    fill_stdio(user, "bad name!", sys.executable, "x")
    user.find(marker="mcp-add").click()
    await user.should_see("The name may have letters, digits, spaces, dots, dashes and underscores")
    assert set(server_rows(user)) == {"broken", "missing"}


@SQLITE_ONLY
async def test_edit_keeps_redacted_secrets_and_reconnects(ui_env: str, user: User) -> None:
    await open_settings(user, "admin@example.com")
    fill_stdio(user, "notes", sys.executable, str(NOTES_SERVER), env="NOTES_TOKEN=tok-secret-123456789")
    user.find(marker="mcp-add").click()
    await wait_for(user, "notes")

    user.find(marker="mcp-server-edit").click()
    await user.should_see(marker="mcp-edit-dialog")
    env = next(iter(user.find(marker="mcp-edit-env").elements))
    assert env.value == "NOTES_TOKEN=tok-...6789"  # type: ignore[attr-defined]  # prefilled redacted
    user.find(marker="mcp-edit-name").clear().type("notebook")
    user.find(marker="mcp-edit-env").type("\nEXTRA=plain-value")
    user.find(marker="mcp-edit-save").click()
    row = await wait_for(user, "notebook")
    assert text(one(user, "mcp-server-status", row)) == "ok"

    admin = await me("admin@example.com")
    registry = app_services().find(McpRegistry)
    assert registry is not None
    server = (await registry.visible(admin))[0]
    result = await registry.call(admin, server.id, "env", {"name": "NOTES_TOKEN"})
    assert result.text == "tok-secret-123456789"  # the redacted value sent back kept the stored one
    result = await registry.call(admin, server.id, "env", {"name": "EXTRA"})
    assert result.text == "plain-value"


@SQLITE_ONLY
async def test_a_user_without_sandboxes_gets_no_stdio_and_sees_the_admins_shared_server(
    ui_env: str, user: User
) -> None:
    await open_settings(user, "admin@example.com")
    fill_stdio(user, "team-notes", sys.executable, str(NOTES_SERVER))
    user.find(marker="mcp-add-shared").click()
    user.find(marker="mcp-add").click()
    row = await wait_for(user, "team-notes")
    assert text(one(user, "mcp-server-shared", row)) == "shared"

    user.http_client.cookies.clear()
    await open_settings(user, "member@example.com")
    transport = next(iter(user.find(marker="mcp-add-transport").elements))
    assert set(transport.options) == {"stdio", "streamable_http", "sse"}  # type: ignore[attr-defined]
    assert transport.value == "streamable_http"  # type: ignore[attr-defined]  # stdio has nowhere to run yet
    await user.should_not_see(marker="mcp-add-shared")
    await user.should_not_see(marker="mcp-add-command")
    await user.should_not_see(marker="mcp-stdio-note")
    user.find(marker="mcp-add-transport").click()
    user.find("stdio (a command)").click()
    await user.should_see(STDIO_NOTE)  # where to run it: a sandbox, which this user does not have
    await user.should_not_see(marker="mcp-add-where")
    await user.should_not_see(marker="mcp-add-command")
    assert not one(user, "mcp-add").enabled  # type: ignore[attr-defined]
    user.find(marker="mcp-add-transport").click()
    user.find("Streamable HTTP").click()
    await user.should_not_see(marker="mcp-stdio-note")
    assert one(user, "mcp-add").enabled  # type: ignore[attr-defined]

    row = await wait_for(user, "team-notes")
    assert text(one(user, "mcp-server-owner", row)) == "shared by admin"
    assert text(one(user, "mcp-server-runs", row)) == "on the host"
    for marker in ("mcp-server-enabled", "mcp-server-edit", "mcp-server-delete"):
        assert in_order(user, marker, row) == [], marker

    user.find(marker="mcp-add-name").type("local")
    user.find(marker="mcp-add-url").type("http://127.0.0.1:9/mcp")
    user.find(marker="mcp-add").click()  # a member's URL may not lead to this host
    await user.should_see("127.0.0.1 leads to a private or local address", retries=50)
    user.find(marker="mcp-add-url").clear().type("not a url")
    user.find(marker="mcp-add").click()
    await user.should_see("Enter the server's full address, starting with http:// or https://.")
    assert set(server_rows(user)) == {"team-notes"}


@pytest.fixture
def local_sandboxes(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_SANDBOX__BACKEND", "local")
    monkeypatch.setenv("AGENT_UI_SANDBOX__WARM_POOL__LOCAL", "0")


@SQLITE_ONLY
async def test_a_user_runs_a_stdio_server_in_their_sandbox(local_sandboxes: None, user: User) -> None:
    await register_in_ui(user, "admin@example.com")  # the first account is the admin
    await user.should_see(marker="empty-thread", retries=100)
    user.http_client.cookies.clear()
    await open_settings(user, "member@example.com")
    member = await me("member@example.com")
    assert not member.is_admin
    sandboxes = app_services().find(SandboxService)
    registry = app_services().find(McpRegistry)
    assert sandboxes is not None and registry is not None
    sandbox = await sandboxes.create(member.user.id, SandboxCreate())
    await sandboxes.write(member.user.id, sandbox.id, "shouter.py", SHOUTER_SERVER.encode())

    await user.open("/settings")  # the form lists the sandboxes running when the page is made
    await user.should_see(marker="mcp-servers", retries=50)
    transport = next(iter(user.find(marker="mcp-add-transport").elements))
    assert transport.value == "stdio"  # type: ignore[attr-defined]
    where = next(iter(user.find(marker="mcp-add-where").elements))
    assert where.options == {sandbox.id: f"sandbox {sandbox.id} (python)"}  # type: ignore[attr-defined]  # no host
    assert where.value == sandbox.id  # type: ignore[attr-defined]
    await user.should_see("It runs in the sandbox's /workspace")
    await user.should_not_see(marker="mcp-stdio-note")
    fill_stdio(user, "shouter", "python3", "shouter.py")
    user.find(marker="mcp-add").click()

    row = await wait_for(user, "shouter")
    assert text(one(user, "mcp-server-status", row)) == "ok", text(one(user, "mcp-server-error", row))
    assert text(one(user, "mcp-server-tools", row)) == "1 tool"
    runs = one(user, "mcp-server-runs", row)
    assert text(runs) == f"in sandbox {sandbox.id}"
    assert runs.props["href"] == f"/sandboxes/{sandbox.id}"
    await user.should_see("Added shouter: 1 tool.")
    server = (await registry.visible(member))[0]
    assert server.sandbox_id == sandbox.id
    result = await registry.call(member, server.id, "shout", {"text": "hi"})
    assert result.text == "HI (in /workspace)"  # it ran in the sandbox's workspace, not on the host

    await sandboxes.destroy(member.user.id, sandbox.id)
    await user.open("/settings")  # a destroyed sandbox is no place to run one any more
    await user.should_see(marker="mcp-servers", retries=50)
    await user.should_not_see(marker="mcp-add-where")
    user.find(marker="mcp-add-transport").click()
    user.find("stdio (a command)").click()
    await user.should_see(STDIO_NOTE)
    row = await wait_for(user, "shouter")
    assert text(one(user, "mcp-server-runs", row)) == f"in sandbox {sandbox.id}"


@pytest.fixture
def mcp_off(ui_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_UI_MCP__ENABLED", "false")


@SQLITE_ONLY
async def test_mcp_turned_off_says_so(mcp_off: None, user: User) -> None:
    await register_in_ui(user, "off@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/settings")
    await user.should_see("MCP is disabled on this instance.")
    await user.should_not_see(marker="mcp-servers")
    await user.should_not_see(marker="integrations")


# -- Integrations ----------------------------------------------------------------------------------------------------


@SQLITE_ONLY
async def test_a_claude_code_key_shows_redacted_toggles_and_is_deleted(ui_env: str, user: User) -> None:
    await open_settings(user, "coder@example.com")
    await user.should_see(marker="integrations")
    await user.should_see("only an admin-enabled sandbox network allows")
    user.find(marker="claude_code-key").type(CLAUDE_KEY)
    user.find(marker="claude_code-model").type("claude-sonnet-4-5")
    user.find(marker="claude_code-save").click()
    await user.should_see(marker="claude_code-key-shown", retries=50)
    assert text(one(user, "claude_code-key-shown")) == "sk-...abcd"
    await user.should_see("model claude-sonnet-4-5")
    assert CLAUDE_KEY not in everything_shown(user)
    await user.should_see(marker="codex-key")  # Codex is still to set

    coder = await me("coder@example.com")
    vault = app_services().find(McpSettingsService)
    assert vault is not None
    user.find(marker="claude_code-active").click()
    for _ in range(100):
        if not (await vault.of_user(coder))[0].is_active:
            break
        await user.should_see(marker="integrations", retries=1)
    assert (await vault.of_user(coder))[0].is_active is False

    user.find(marker="claude_code-replace").click()
    user.find(marker="claude_code-key").type("sk-ant-api03-another-key-wxyz")
    user.find(marker="claude_code-replace-save").click()
    await user.should_see("Claude Code: key replaced", retries=50)
    assert text(one(user, "claude_code-key-shown")) == "sk-...wxyz"
    assert "another-key" not in everything_shown(user)
    active = await vault.active(coder.user.id)
    assert active == []  # replacing the key kept it inactive
    setting = (await vault.of_user(coder))[0]
    assert setting.mcp_config["model"] == "claude-sonnet-4-5"  # and kept the model

    user.find(marker="claude_code-delete").click()
    user.find(marker="confirm-integration-delete").click()
    await user.should_see(marker="claude_code-save", retries=50)
    assert await vault.of_user(coder) == []

    user.find(marker="codex-key").type("short")
    user.find(marker="codex-save").click()
    await user.should_see("Paste the whole API key (8 to 512 characters).")


@SQLITE_ONLY
async def test_custom_entries_check_their_json(ui_env: str, user: User) -> None:
    await open_settings(user, "custom@example.com")
    await user.should_see(marker="no-custom-settings")
    user.find(marker="custom-name").type("my-agent")
    user.find(marker="custom-config").type('{"mcpServers": {"x": {"command": "x"}}')
    user.find(marker="custom-add").click()
    await user.should_see("The MCP config is not valid JSON: Expecting ',' delimiter (line 1, column 39).")
    user.find(marker="custom-config").type("}")
    user.find(marker="custom-auth").type('["not", "an object"]')
    user.find(marker="custom-add").click()
    await user.should_see("The secrets must be a JSON object ({...}), not a list.")
    user.find(marker="custom-auth").clear().type('{"token": "tk-0123456789secret"}')
    user.find(marker="custom-add").click()
    await user.should_see(marker="custom-my-agent", retries=50)
    assert text(one(user, "custom-setting-type")) == "custom:my-agent"
    assert "tk-0123456789secret" not in everything_shown(user)
    assert text(one(user, "custom-setting-auth")) == 'secrets {"token": "tk-...cret"}'

    owner = await me("custom@example.com")
    vault = app_services().find(McpSettingsService)
    assert vault is not None
    user.find(marker="custom-active").click()
    for _ in range(100):
        if not (await vault.of_user(owner))[0].is_active:
            break
        await user.should_see(marker="integrations", retries=1)
    assert (await vault.of_user(owner))[0].is_active is False

    user.find(marker="custom-delete").click()
    user.find(marker="confirm-integration-delete").click()
    await user.should_see(marker="no-custom-settings", retries=50)
    assert await vault.of_user(owner) == []
