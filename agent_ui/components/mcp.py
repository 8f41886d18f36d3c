"""Settings → MCP servers and Settings → Integrations.

MCP servers: the servers the user registered and the ones an admin shared, each with what its last connection
found (status, tool count, the exact error) and where a stdio server runs, an add form and, for one's own, enable /
test / edit / delete. A stdio server runs in one of the user's running sandboxes (its files in /workspace), or, for
an admin, on the host as the app's own user.
Integrations: the provider keys Codex and Claude Code get in the user's new sandboxes, and custom entries.

Secrets never reach the page in full: the services return them redacted (``sk-...abcd``), an edit form is
prefilled with those redacted values, and a redacted value sent back keeps what is stored. A key typed into a
field leaves the page when it is saved (the row is rebuilt without the field).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import background_tasks, ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.confirm import confirm
from services.auth import Principal
from services.container import Services
from services.errors import DomainError
from services.mcp import McpRegistry, McpSettingsService
from services.mcp.schemas import (
    AgentCliSettings,
    CustomSettings,
    ServerCreate,
    ServerRead,
    ServerTest,
    ServerUpdate,
    SettingRead,
    SettingUpdate,
)
from services.sandbox import SandboxService
from services.sandbox.schemas import SandboxRead

TRANSPORTS = {"stdio": "stdio (a command)", "streamable_http": "Streamable HTTP", "sse": "SSE"}
TRANSPORT_SHORT = {"stdio": "stdio", "streamable_http": "Streamable HTTP", "sse": "SSE"}
STATUS_COLORS = {"ok": "positive", "error": "negative", "unknown": "grey"}
HOST = "host"  # the "Runs in" choice that is not a sandbox
HOST_LABEL = "this server (host)"
STDIO_NOTE = "To add a stdio server, create a sandbox first (Sandboxes page) and put your server's files in it."
HOST_HINT = "It runs on the host as the app's own user."
SANDBOX_HINT = (
    "It runs in the sandbox's /workspace (put its files there); the sandbox has python3's standard library and no "
    "network. Its stderr goes to /tmp/.agent-ui-stdio.log in the sandbox."
)
CLIS = {"codex": "Codex", "claude_code": "Claude Code"}
CLI_PROVIDERS = {"codex": "OpenAI", "claude_code": "Anthropic"}
INTEGRATIONS_NOTE = (
    "Written into your new sandboxes (template agents); the CLIs also need their provider's API, which only an "
    "admin-enabled sandbox network allows."
)
# What a refused field means, in words (pydantic's own messages name patterns and types).
FIELD_HELP = {
    "name": "The name may have letters, digits, spaces, dots, dashes and underscores (up to 64), "
    "starting with a letter or digit.",
    "url": "Enter the server's full address, starting with http:// or https://.",
    "command": "Enter the command that starts the server (like python3).",
    "args": "At most 64 arguments, each up to 4,096 characters.",
    "env": "Environment names are letters, digits and _ (not starting with a digit); at most 64.",
    "headers": "Header names are letters, digits and - without spaces; at most 32.",
    "api_key": "Paste the whole API key (8 to 512 characters).",
    "model": "The model name is up to 128 characters.",
}

# Quasar's negative and positive are too faint for small text (green on white is 2.5:1, dark red on #121212 2:1).
CSS = """
.mcp-bad { color: #b00020; }
.mcp-good { color: #1b6e33; }
.body--dark .mcp-bad { color: #ff8a80; }
.body--dark .mcp-good { color: #7ee2a0; }
"""


class FormError(ValueError):
    """A field the user filled in a way we cannot read; ``str()`` is the sentence to show."""


# -- pure helpers (tested on their own) ------------------------------------------------------------------------------


def parse_args(text: str) -> list[str]:
    """Arguments typed one per line (each line is one argument, spaces kept), or on a single line split the way
    a shell would (``-m server --port 8080``, quotes group)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        return lines
    try:
        return shlex.split(lines[0])
    except ValueError as exc:
        raise FormError(f"The arguments could not be read ({exc}): close the quote or put one per line.") from exc


def args_text(args: list[str]) -> str:
    """The arguments as the form shows them, so that reading them back gives the same list."""
    return "\n".join(args) if len(args) > 1 else shlex.join(args)


def parse_pairs(text: str, separator: str, what: str) -> dict[str, str]:
    """``KEY=value`` (env) or ``Name: value`` (headers) lines; the first separator splits, blank lines are skipped."""
    pairs: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, found, value = line.partition(separator)
        if not found or not key.strip():
            example = "KEY=value" if separator == "=" else "Name: value"
            raise FormError(f"Line {number} of the {what} is not “{example}”.")
        pairs[key.strip()] = value.strip()
    return pairs


def pairs_text(pairs: dict[str, str], separator: str) -> str:
    joiner = "=" if separator == "=" else ": "
    return "\n".join(f"{key}{joiner}{value}" for key, value in pairs.items())


def parse_json_object(text: str, what: str, *, required: bool) -> dict[str, Any] | None:
    """A JSON object from a textarea, or a sentence saying where it is wrong."""
    if not text.strip():
        if required:
            raise FormError(f'Enter the {what} as a JSON object, like {{"mcpServers": {{}}}}.')
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormError(f"The {what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
    if not isinstance(value, dict):
        raise FormError(f"The {what} must be a JSON object ({{...}}), not a {type(value).__name__}.")
    return value


def invalid_text(exc: ValidationError) -> str:
    """The first refusal of a request model as one plain sentence."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    if field in FIELD_HELP:
        return FIELD_HELP[field]
    return str(error["msg"]).removeprefix("Value error, ").capitalize().rstrip(".") + "."


def server_target(server: ServerRead) -> str:
    """What the server runs or where it is: the command line, or the URL."""
    if server.transport == "stdio":
        return shlex.join([server.command or "", *server.args])
    return server.url or ""


def server_place(server: ServerRead) -> str:
    """Where a stdio server runs ("in sandbox sbx_…", "on the host"); empty for a server reached by URL."""
    if server.transport != "stdio":
        return ""
    return f"in sandbox {server.sandbox_id}" if server.sandbox_id else "on the host"


def place_choices(sandboxes: list[SandboxRead], *, admin: bool) -> dict[str, str]:
    """The "Runs in" choices: the host for an admin, then each running sandbox (others cannot start a process)."""
    choices = {HOST: HOST_LABEL} if admin else {}
    for sandbox in sandboxes:
        if sandbox.status == "running":
            choices[sandbox.id] = f"sandbox {sandbox.id} ({sandbox.template})"
    return choices


def secrets_text(server: ServerRead) -> str:
    """The env or headers, values as the service shows them (redacted)."""
    if server.transport == "stdio":
        return ("env " + ", ".join(f"{k}={v}" for k, v in server.env.items())) if server.env else ""
    return ("headers " + ", ".join(f"{k}: {v}" for k, v in server.headers.items())) if server.headers else ""


def tools_text(count: int) -> str:
    return f"{count} tool{'s' if count != 1 else ''}"


def compact_json(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def attempt(action: Callable[[], Awaitable[Any]]) -> Any | None:
    """Run a service call; a refusal becomes a notification (never a traceback) and the answer None."""
    try:
        return await action()
    except DomainError as exc:
        ui.notify(exc.message, type="negative", multi_line=True)
    except ValidationError as exc:
        ui.notify(invalid_text(exc), type="warning", multi_line=True)
    except FormError as exc:
        ui.notify(str(exc), type="warning", multi_line=True)
    return None


def one_use(dialog: ui.dialog) -> ui.dialog:
    """A dialog made for one showing: gone from the page once closed (each Test or Edit makes a new one, outside
    the list, which a refresh redraws while the dialog is open)."""
    dialog.on_value_change(lambda e: None if e.value else dialog.delete())
    return dialog


def section_title(text: str, hint: str) -> None:
    ui.label(text).classes("text-lg font-medium")
    ui.label(hint).classes("text-sm text-grey-7")


def disabled_notice() -> None:
    with ui.card().classes("w-full"):
        ui.label("MCP is disabled on this instance.").classes("text-lg").mark("mcp-off")
        ui.label("An admin turns it on with AGENT_UI_MCP__ENABLED=true.").classes("text-grey-7")


async def mcp_sections(services: Services, principal: Principal) -> None:
    """Both sections, or one notice when this instance runs without MCP."""
    registry = services.find(McpRegistry)
    user_settings = services.find(McpSettingsService)
    if registry is None or user_settings is None:
        disabled_notice()
        return
    ui.add_css(CSS)
    servers = McpServersSection(registry, principal, services.find(SandboxService))
    await servers.build()
    integrations = IntegrationsSection(user_settings, principal)
    await integrations.build()


# -- MCP servers -----------------------------------------------------------------------------------------------------


class ServerFieldsForm:
    """The fields that say how to reach a server (stdio: command, args, env; HTTP: URL, headers), shown for the
    chosen transport. Used by the add form and the edit dialog."""

    def __init__(self, transport: str, *, prefix: str, server: ServerRead | None = None) -> None:
        self.transport = transport
        with ui.column().classes("w-full gap-2") as self.stdio:
            self.command = ui.input("Command", placeholder="e.g. /usr/bin/python3 or npx").props("outlined dense")
            self.command.classes("w-full").mark(f"{prefix}-command")
            with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-2 w-full"):
                self.args = (
                    ui.textarea("Arguments", placeholder="one per line, or on one line as in a shell")
                    .props("outlined dense autogrow input-class=font-mono")
                    .classes("w-full")
                    .mark(f"{prefix}-args")
                )
                self.env = (
                    ui.textarea("Environment (optional)", placeholder="KEY=value, one per line")
                    .props("outlined dense autogrow input-class=font-mono")
                    .classes("w-full")
                    .mark(f"{prefix}-env")
                )
        with ui.column().classes("w-full gap-2") as self.http:
            self.url = ui.input("URL", placeholder="https://example.com/mcp").props("outlined dense")
            self.url.classes("w-full").mark(f"{prefix}-url")
            self.headers = ui.textarea("Headers (optional)", placeholder="Authorization: Bearer …, one per line")
            self.headers.props("outlined dense autogrow input-class=font-mono").classes("w-full").mark(
                f"{prefix}-headers"
            )
        if server is not None:
            self.command.set_value(server.command or "")
            self.args.set_value(args_text(server.args))
            self.env.set_value(pairs_text(server.env, "="))
            self.url.set_value(server.url or "")
            self.headers.set_value(pairs_text(server.headers, ":"))
        self.show(transport)

    def show(self, transport: str) -> None:
        self.transport = transport
        self.stdio.set_visibility(transport == "stdio")
        self.http.set_visibility(transport != "stdio")

    def values(self) -> dict[str, Any]:
        """The fields of the chosen transport, read into the request's shape (FormError when a line is off)."""
        if self.transport == "stdio":
            return {
                "command": (self.command.value or "").strip() or None,
                "args": parse_args(self.args.value or ""),
                "env": parse_pairs(self.env.value or "", "=", "environment"),
            }
        return {
            "url": (self.url.value or "").strip() or None,
            "headers": parse_pairs(self.headers.value or "", ":", "headers"),
        }

    def clear(self) -> None:
        for field in (self.command, self.args, self.env, self.url, self.headers):
            field.set_value("")


class McpServersSection:
    """The card: the servers the user sees, and the form that adds one."""

    def __init__(self, registry: McpRegistry, principal: Principal, sandboxes: SandboxService | None) -> None:
        self._registry = registry
        self._principal = principal
        self._admin = principal.is_admin
        self._sandboxes = sandboxes

    async def build(self) -> None:
        with (
            ui.card()
            .classes("w-full gap-3 min-w-0 scroll-mt-20")
            .props("id=mcp-servers")
            .mark("mcp-servers") as self._card
        ):
            section_title("MCP servers", "The tools of your enabled servers are offered in chat.")
            self._list = ui.column().classes("w-full gap-0 min-w-0").mark("mcp-server-list")
            self._add_form(place_choices(await self._live_sandboxes(), admin=self._admin))
        await self._refresh_list()

    async def refresh(self) -> None:
        """The rows, and the sandboxes a stdio server may run in (one may have been made or destroyed since)."""
        self._set_places(place_choices(await self._live_sandboxes(), admin=self._admin))
        await self._refresh_list()

    async def _live_sandboxes(self) -> list[SandboxRead]:
        if self._sandboxes is None:
            return []
        sandboxes = self._sandboxes
        return await attempt(lambda: sandboxes.list(self._principal.user.id)) or []

    async def _refresh_list(self) -> None:
        servers = await attempt(lambda: self._registry.visible(self._principal)) or []
        self._list.clear()
        with self._list:
            if not servers:
                ui.label("No servers yet.").classes("text-grey-7").mark("no-mcp-servers")
            for server in servers:
                self._row(server)

    def refresh_soon(self) -> None:
        """Redraw from a synchronous callback (the confirmation dialog's ``then``)."""
        background_tasks.create(self.refresh(), name="mcp-servers-refresh")

    # -- the list ----------------------------------------------------------------------------------------------------

    def _row(self, server: ServerRead) -> None:
        with (
            ui.row()
            .classes("w-full items-start gap-x-3 gap-y-1 py-2 border-b min-w-0 sm:flex-nowrap")
            .mark("mcp-server", f"mcp-server-{server.id}")
            .props(f"data-testid=mcp-server-{server.id}")
        ):
            with ui.column().classes("gap-1 grow min-w-0 max-sm:w-full"):
                with ui.row().classes("items-center gap-2 flex-wrap min-w-0"):
                    ui.label(server.name).classes("font-medium break-all").mark("mcp-server-name")
                    ui.badge(TRANSPORT_SHORT[server.transport], color="blue-grey-6").props("outline").mark(
                        "mcp-server-transport"
                    )
                    status = ui.badge(server.status, color=STATUS_COLORS[server.status]).mark("mcp-server-status")
                    if server.last_error:
                        status.tooltip(server.last_error)
                    ui.label(tools_text(server.tool_count)).classes("text-sm text-grey-7").mark("mcp-server-tools")
                    if server.shared:
                        ui.badge("shared", color="primary").mark("mcp-server-shared")
                    owner = "yours" if server.own else "shared by admin"
                    ui.label(owner).classes("text-xs text-grey-7").mark("mcp-server-owner")
                    if not server.own and not server.enabled:
                        ui.badge("disabled", color="grey")
                ui.label(server_target(server)).classes("text-xs text-grey-7 font-mono break-all").mark(
                    "mcp-server-target"
                )
                if place := server_place(server):
                    runs: ui.link | ui.label
                    if server.sandbox_id and server.own:  # another's sandbox (an admin's) does not open for us
                        runs = ui.link(place, f"/sandboxes/{server.sandbox_id}")
                    else:
                        runs = ui.label(place)
                    runs.classes("text-xs text-grey-7 break-all").mark("mcp-server-runs")
                if secrets := secrets_text(server):
                    ui.label(secrets).classes("text-xs text-grey-7 font-mono break-all").mark("mcp-server-secrets")
                if server.status == "error" and server.last_error:
                    ui.label(server.last_error).classes("text-xs mcp-bad break-all").mark("mcp-server-error")
            with ui.row().classes("items-center gap-1 no-wrap shrink-0 max-sm:w-full max-sm:justify-end"):
                if server.own:
                    switch = ui.switch(value=server.enabled)
                    switch.on_value_change(lambda e, s=server: self._set_enabled(s, bool(e.value)))
                    named(switch, f"{server.name} enabled").tooltip("Enabled").mark("mcp-server-enabled")
                test = named(ui.button("Test"), f"Test {server.name}")
                test.props("flat dense no-caps").tooltip("Connect and list the tools").mark("mcp-server-test")
                test.on_click(lambda _, s=server, b=test: self._test(s, b))
                if server.own:
                    named(ui.button(icon="edit", on_click=lambda s=server: self._edit(s)), f"Edit {server.name}").props(
                        "flat round dense"
                    ).tooltip("Edit").mark("mcp-server-edit")
                    named(
                        ui.button(icon="delete", on_click=lambda s=server: self._confirm_delete(s)),
                        f"Delete {server.name}",
                    ).props("flat round dense color=negative").tooltip("Delete").mark("mcp-server-delete")

    async def _set_enabled(self, server: ServerRead, enabled: bool) -> None:
        if enabled == server.enabled:
            return
        await attempt(lambda: self._registry.update(self._principal, server.id, ServerUpdate(enabled=enabled)))
        await self.refresh()

    async def _test(self, server: ServerRead, button: ui.button) -> None:
        button.props("loading")
        try:
            result = await attempt(lambda: self._registry.test(self._principal, server.id))
        finally:
            button.props(remove="loading")
        if result is not None:
            self._show_test(server, result)
        await self.refresh()

    def _show_test(self, server: ServerRead, result: ServerTest) -> None:
        with (
            self._card,
            one_use(ui.dialog()) as dialog,
            ui.card().classes("w-[40rem] max-w-full gap-2").mark("mcp-test-dialog"),
        ):
            ui.label(f"Test: {server.name}").classes("text-lg font-medium break-all")
            if result.ok:
                about = " ".join(part for part in (result.server_name, result.server_version) if part)
                ui.label(f"Connected in {result.latency_ms:g} ms" + (f" · {about}" if about else "")).classes(
                    "mcp-good"
                ).mark("mcp-test-ok")
                ui.label(tools_text(len(result.tools))).classes("text-sm text-grey-7")
                with ui.column().classes("w-full gap-1 max-h-[60vh] overflow-auto"):
                    for tool in result.tools:
                        with ui.column().classes("gap-0 py-1 border-b w-full").mark("mcp-test-tool"):
                            ui.label(tool.name).classes("font-mono font-medium break-all").mark("mcp-test-tool-name")
                            if tool.description:
                                ui.label(tool.description).classes("text-sm text-grey-8")
            elif result.error is not None:
                ui.label(f"Could not connect ({result.error.kind.replace('_', ' ')})").classes("mcp-bad")
                ui.label(result.error.message).classes("font-mono text-sm break-all whitespace-pre-wrap").mark(
                    "mcp-test-error"
                )
            with ui.row().classes("justify-end w-full"):
                ui.button("Close", on_click=dialog.close).props("flat").mark("mcp-test-close")
        dialog.open()

    def _confirm_delete(self, server: ServerRead) -> None:
        confirm(
            f"Delete the MCP server “{server.name}”? Its tools leave your chats.",
            action_label="Delete",
            marker="confirm-mcp-delete",
            action=lambda: self._registry.delete(self._principal, server.id),
            then=self.refresh_soon,
        )

    def _edit(self, server: ServerRead) -> None:
        with (
            self._card,
            one_use(ui.dialog()) as dialog,
            ui.card().classes("w-[40rem] max-w-full gap-2").mark("mcp-edit-dialog"),
        ):
            ui.label(f"Edit {server.name}").classes("text-lg font-medium break-all")
            about = " · ".join(part for part in (TRANSPORT_SHORT[server.transport], server_place(server)) if part)
            ui.label(f"Transport: {about}").classes("text-sm text-grey-7")
            name = ui.input("Name", value=server.name).props("outlined dense").classes("w-full").mark("mcp-edit-name")
            fields = ServerFieldsForm(server.transport, prefix="mcp-edit", server=server)
            if server.env or server.headers:
                ui.label("Values shown redacted (like sk-...abcd) keep what is stored; type a new value to replace "
                         "one, remove a line to drop it.").classes("text-xs text-grey-7")  # fmt: skip
            shared = None
            if self._admin:
                shared = ui.checkbox("Shared with every user", value=server.shared).mark("mcp-edit-shared")

            async def save() -> None:
                def request() -> ServerUpdate:
                    return ServerUpdate(name=(name.value or "").strip(), shared=shared.value if shared else None,
                                        **fields.values())  # fmt: skip

                async def update() -> ServerRead:
                    updated = await self._registry.update(self._principal, server.id, request())
                    if updated.enabled:  # connect again, so the row tells how the new settings fare
                        await self._registry.test(self._principal, server.id)
                    return updated

                save_button.props("loading")
                try:
                    updated = await attempt(update)
                finally:
                    save_button.props(remove="loading")
                if updated is not None:
                    dialog.close()
                    await self.refresh()

            with ui.row().classes("justify-end w-full"):
                ui.button("Cancel", on_click=dialog.close).props("flat")
                save_button = ui.button("Save", on_click=save).mark("mcp-edit-save")
        dialog.open()

    # -- the add form ------------------------------------------------------------------------------------------------

    def _add_form(self, places: dict[str, str]) -> None:
        with ui.column().classes("w-full gap-2 pt-2").mark("mcp-add-form"):
            ui.label("Add server").classes("font-medium")
            with ui.row().classes("w-full items-start gap-2 no-wrap max-sm:flex-wrap"):
                self._name = ui.input("Name", placeholder="e.g. notes").props("outlined dense").classes("grow min-w-0")
                self._name.mark("mcp-add-name")
                first = "stdio" if places else "streamable_http"
                self._transport = ui.select(TRANSPORTS, value=first, label="Transport").props("outlined dense")
                self._transport.classes("w-64 max-sm:w-full").mark("mcp-add-transport")
            with ui.column().classes("w-full gap-1") as self._where:
                self._runs_in = ui.select({}, label="Runs in").props("outlined dense")
                self._runs_in.classes("w-full sm:w-[28rem]").mark("mcp-add-where")
                self._where_hint = ui.label().classes("text-xs text-grey-7").mark("mcp-where-hint")
                self._stdio_note = ui.label(STDIO_NOTE).classes("text-sm text-grey-8").mark("mcp-stdio-note")
            self._fields = ServerFieldsForm(first, prefix="mcp-add")
            self._shared = None
            with ui.row().classes("w-full items-center justify-between gap-2"):
                if self._admin:
                    self._shared = ui.checkbox("Shared with every user").mark("mcp-add-shared")
                self._add_button = ui.button("Add server", icon="add", on_click=self._add).classes("ml-auto")
                self._add_button.mark("mcp-add")
        self._transport.on_value_change(self._show_choice)
        self._runs_in.on_value_change(self._show_choice)
        self._set_places(places)

    def _set_places(self, places: dict[str, str]) -> None:
        """Offer these places to run a stdio server, keeping the one chosen while it is still there."""
        kept = self._runs_in.value if self._runs_in.value in places else next(iter(places), None)
        self._runs_in.set_options(places, value=kept)
        self._show_choice()

    def _show_choice(self) -> None:
        """The fields of the chosen transport; for stdio where it runs, or why it cannot run anywhere yet."""
        stdio = self._transport.value == "stdio"
        can_run = bool(self._runs_in.options)
        self._fields.show(str(self._transport.value))
        self._fields.stdio.set_visibility(stdio and can_run)
        self._where.set_visibility(stdio)
        self._runs_in.set_visibility(can_run)
        self._where_hint.set_text(HOST_HINT if self._runs_in.value == HOST else SANDBOX_HINT)
        self._where_hint.set_visibility(can_run)
        self._stdio_note.set_visibility(not can_run)
        self._add_button.set_enabled(can_run or not stdio)

    async def _add(self) -> None:
        if not self._add_button.enabled:  # pressed again while the first connection is tried
            return

        def request() -> ServerCreate:
            values = self._fields.values()
            if self._transport.value == "stdio":
                if self._runs_in.value is None:
                    raise FormError(STDIO_NOTE)
                values["sandbox_id"] = None if self._runs_in.value == HOST else str(self._runs_in.value)
            return ServerCreate(name=(self._name.value or "").strip(), transport=self._transport.value,
                                shared=bool(self._shared and self._shared.value), **values)  # fmt: skip

        async def create() -> ServerRead:
            return await self._registry.create(self._principal, request())

        self._add_button.disable()
        self._add_button.props("loading")
        try:
            created = await attempt(create)
        finally:
            self._add_button.props(remove="loading")
            self._add_button.enable()
        if created is None:
            return
        self._name.set_value("")
        self._fields.clear()
        if self._shared is not None:
            self._shared.set_value(False)
        if created.status == "ok":
            ui.notify(f"Added {created.name}: {tools_text(created.tool_count)}.", type="positive")
        elif created.last_error:
            ui.notify(f"Added {created.name}, but it does not answer: {created.last_error}", type="warning",
                      multi_line=True)  # fmt: skip
        await self.refresh()


# -- Integrations ----------------------------------------------------------------------------------------------------


class IntegrationsSection:
    """Codex and Claude Code (a key, a model, active or not) and custom entries, for the user's new sandboxes."""

    def __init__(self, settings: McpSettingsService, principal: Principal) -> None:
        self._settings = settings
        self._principal = principal

    async def build(self) -> None:
        with ui.card().classes("w-full gap-3 min-w-0 scroll-mt-20").props("id=integrations").mark("integrations"):
            section_title("Integrations", "Coding agents in your sandboxes: their keys are stored encrypted.")
            ui.label(INTEGRATIONS_NOTE).classes("text-sm text-grey-8").mark("integrations-note")
            self._body = ui.column().classes("w-full gap-0 min-w-0")
            ui.label("Custom").classes("font-medium pt-2")
            self._customs = ui.column().classes("w-full gap-0 min-w-0").mark("custom-settings")
            self._custom_form()
        await self.refresh()

    async def refresh(self) -> None:
        rows: list[SettingRead] = await attempt(lambda: self._settings.of_user(self._principal)) or []
        by_type = {row.tool_type: row for row in rows}
        self._body.clear()
        with self._body:
            for tool, title in CLIS.items():
                self._cli_row(tool, title, by_type.get(tool))
        self._customs.clear()
        with self._customs:
            customs = [row for row in rows if row.tool_type.startswith("custom:")]
            if not customs:
                ui.label("No custom entries.").classes("text-sm text-grey-7").mark("no-custom-settings")
            for row in customs:
                self._custom_row(row)

    def refresh_soon(self) -> None:
        """Redraw from a synchronous callback (the confirmation dialog's ``then``)."""
        background_tasks.create(self.refresh(), name="integrations-refresh")

    # -- Codex, Claude Code ------------------------------------------------------------------------------------------

    def _key_input(self, tool: str, title: str, label: str) -> ui.input:
        field = ui.input(label, password=True).props("outlined dense autocomplete=off spellcheck=false")
        named(field, f"{title} API key")
        return field.classes("grow min-w-[12rem]").mark(f"{tool}-key")

    def _cli_row(self, tool: str, title: str, setting: SettingRead | None) -> None:
        row = ui.column().classes("w-full gap-1 py-2 border-b min-w-0").props(f"data-testid=integration-{tool}")
        with row.mark("integration", f"integration-{tool}"):
            if setting is None:
                self._cli_unset(tool, title)
            else:
                self._cli_set(tool, title, setting)

    def _cli_unset(self, tool: str, title: str) -> None:
        """Not set: the key (and an optional model) to save."""
        with ui.row().classes("w-full items-center gap-x-3 gap-y-1 flex-wrap min-w-0"):
            ui.label(title).classes("font-medium")
            ui.label(f"not set · needs an {CLI_PROVIDERS[tool]} API key").classes("text-sm text-grey-7")
        with ui.row().classes("w-full items-center gap-2 no-wrap max-sm:flex-wrap"):
            key = self._key_input(tool, title, f"{CLI_PROVIDERS[tool]} API key")
            model = ui.input("Model (optional)").props("outlined dense").classes("w-48 max-sm:w-full")
            model.mark(f"{tool}-model")

            async def save() -> None:
                def request() -> AgentCliSettings:
                    return AgentCliSettings(api_key=key.value or "", model=(model.value or "").strip() or None)

                async def create() -> tuple[SettingRead, bool]:
                    return await self._settings.save_cli(self._principal, tool, request())

                if await attempt(create) is not None:
                    ui.notify(f"{title}: key saved", type="positive")
                    await self.refresh()

            ui.button("Save", on_click=save).classes("ml-auto").mark(f"{tool}-save")
            key.on("keydown.enter", save)

    def _cli_set(self, tool: str, title: str, setting: SettingRead) -> None:
        """Set: the redacted key, active or not, replace the key, delete."""
        with ui.row().classes("w-full items-center gap-x-3 gap-y-1 flex-wrap min-w-0"):
            ui.label(title).classes("font-medium")
            ui.label(str((setting.auth_json or {}).get("api_key", ""))).classes("font-mono text-sm").mark(
                f"{tool}-key-shown"
            )
            model_name = setting.mcp_config.get("model")
            ui.label(f"model {model_name}" if model_name else "default model").classes("text-sm text-grey-7")
            with ui.row().classes("items-center gap-1 no-wrap ml-auto"):  # on the right, also when wrapped
                switch = ui.switch("Active", value=setting.is_active).mark(f"{tool}-active")
                switch.on_value_change(lambda e: self._set_active(tool, setting, bool(e.value)))
                named(switch, f"Active: {title}")
                replace = ui.button("Replace key").props("flat dense no-caps").mark(f"{tool}-replace")
                named(
                    ui.button(icon="delete", on_click=lambda: self._confirm_delete(tool, title)),
                    f"Delete the {title} key",
                ).props("flat round dense color=negative").tooltip("Delete").mark(f"{tool}-delete")
        with ui.row().classes("w-full items-center gap-2 no-wrap max-sm:flex-wrap") as replace_row:
            key = self._key_input(tool, title, f"New {CLI_PROVIDERS[tool]} API key")

            async def replace_key() -> None:
                async def update() -> SettingRead:
                    return await self._settings.update(self._principal, tool, SettingUpdate(api_key=key.value or ""))

                if await attempt(update) is not None:
                    ui.notify(f"{title}: key replaced", type="positive")
                    await self.refresh()

            def show(visible: bool) -> None:
                key.set_value("")
                replace_row.set_visibility(visible)
                if visible:
                    key.run_method("focus")

            ui.button("Save", on_click=replace_key).mark(f"{tool}-replace-save")
            ui.button("Cancel", on_click=lambda: show(False)).props("flat").mark(f"{tool}-replace-cancel")
            key.on("keydown.enter", replace_key)
        replace_row.set_visibility(False)
        replace.on_click(lambda: show(True))

    async def _set_active(self, tool: str, setting: SettingRead, active: bool) -> None:
        if active == setting.is_active:
            return
        await attempt(lambda: self._settings.update(self._principal, tool, SettingUpdate(is_active=active)))
        await self.refresh()

    def _confirm_delete(self, tool: str, title: str) -> None:
        confirm(
            f"Delete “{title}”? Sandboxes you create from now on no longer get it.",
            action_label="Delete",
            marker="confirm-integration-delete",
            action=lambda: self._settings.delete(self._principal, tool),
            then=self.refresh_soon,
        )

    # -- custom entries ----------------------------------------------------------------------------------------------

    def _custom_row(self, setting: SettingRead) -> None:
        name = setting.tool_type.removeprefix("custom:")
        with (
            ui.row()
            .classes("w-full items-start gap-x-3 gap-y-1 py-2 border-b min-w-0 sm:flex-nowrap")
            .mark("custom-setting", f"custom-{name}")
        ):
            with ui.column().classes("gap-0 grow min-w-0 max-sm:w-full"):
                ui.label(setting.tool_type).classes("font-medium font-mono break-all").mark("custom-setting-type")
                ui.label(compact_json(setting.mcp_config)).classes("text-xs text-grey-7 font-mono break-all")
                if setting.auth_json:
                    ui.label("secrets " + compact_json(setting.auth_json)).classes(
                        "text-xs text-grey-7 font-mono break-all"
                    ).mark("custom-setting-auth")
            with ui.row().classes("items-center gap-1 no-wrap shrink-0 max-sm:w-full max-sm:justify-end"):
                switch = ui.switch("Active", value=setting.is_active).mark("custom-active")
                switch.on_value_change(lambda e, s=setting: self._set_active(s.tool_type, s, bool(e.value)))
                named(switch, f"Active: {setting.tool_type}")
                named(
                    ui.button(icon="delete", on_click=lambda t=setting.tool_type: self._confirm_delete(t, t)),
                    f"Delete {setting.tool_type}",
                ).props("flat round dense color=negative").tooltip("Delete").mark("custom-delete")

    def _custom_form(self) -> None:
        with ui.column().classes("w-full gap-2 pt-2").mark("custom-add-form"):
            ui.label("Add a custom entry").classes("text-sm font-medium")
            self._custom_name = ui.input("Name", placeholder="e.g. my-agent").props("outlined dense")
            self._custom_name.classes("w-full sm:w-72").mark("custom-name")
            with ui.element("div").classes("grid grid-cols-1 md:grid-cols-2 gap-2 w-full"):
                self._custom_config = (
                    ui.textarea("MCP config (JSON)", placeholder='{"mcpServers": {}}')
                    .props("outlined dense autogrow input-class=font-mono")
                    .classes("w-full")
                    .mark("custom-config")
                )
                self._custom_auth = (
                    ui.textarea("Secrets (JSON, optional)", placeholder='{"token": "…"}')
                    .props("outlined dense autogrow input-class=font-mono")
                    .classes("w-full")
                    .mark("custom-auth")
                )
            with ui.row().classes("w-full justify-end"):
                ui.button("Add entry", icon="add", on_click=self._add_custom).mark("custom-add")

    async def _add_custom(self) -> None:
        def request() -> CustomSettings:
            config = parse_json_object(self._custom_config.value or "", "MCP config", required=True)
            auth = parse_json_object(self._custom_auth.value or "", "secrets", required=False)
            name = (self._custom_name.value or "").strip()
            try:
                return CustomSettings(name=name, mcp_config=config or {}, auth_json=auth)
            except ValidationError as exc:
                if exc.errors()[0]["loc"][:1] == ("name",):
                    raise FormError("The name may have letters, digits, dots, dashes and underscores (up to 64), "
                                    "starting with a letter or digit.") from exc  # fmt: skip
                raise

        async def save() -> tuple[SettingRead, bool]:
            return await self._settings.save_custom(self._principal, request())

        saved = await attempt(save)
        if saved is None:
            return
        setting, created = saved
        if not created:
            ui.notify(f"{setting.tool_type} replaced", type="info")
        for field in (self._custom_name, self._custom_config, self._custom_auth):
            field.set_value("")
        await self.refresh()
