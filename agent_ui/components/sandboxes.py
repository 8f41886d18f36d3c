"""Sandboxes in the browser: the list with a create form, a file browser (the terminals are in terminal.py)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from nicegui import events, ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.confirm import confirm
from agent_ui.components.tool_cards import as_dict
from services.clock import utcnow
from services.errors import DomainError
from services.sandbox import SandboxService
from services.sandbox.base import FileEntry
from services.sandbox.schemas import SandboxCreate, SandboxRead
from services.settings import SandboxSettings

LIFETIMES = {"30 minutes": 1800, "1 hour": 3600, "4 hours": 4 * 3600, "1 day": 24 * 3600}
MEMORY_CHOICES = (256, 512, 1024, 2048, 4096)
STATUS_COLORS = {"running": "positive", "starting": "warning", "destroyed": "grey", "failed": "negative"}


def describe_limits(sandbox: SandboxRead) -> str:
    return (f"{sandbox.cpu:g} CPU · {sandbox.memory_mb} MB memory · {sandbox.pids} processes · "
            f"{sandbox.disk_mb} MB disk" + (" · network" if sandbox.network else " · no network"))  # fmt: skip


def describe_expiry(sandbox: SandboxRead, now: datetime | None = None) -> str:
    if sandbox.status not in ("running", "starting"):
        when = sandbox.destroyed_at or sandbox.expires_at
        return f"{sandbox.status} {when:%Y-%m-%d %H:%M} UTC" + (
            f" ({sandbox.destroy_reason})" if sandbox.destroy_reason else ""
        )
    left = int((sandbox.expires_at - (now or utcnow())).total_seconds())
    span = f"{left // 3600} h {left % 3600 // 60} min" if left >= 3600 else f"{max(0, left) // 60} min"
    return f"expires {sandbox.expires_at:%H:%M} UTC (in {span})"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def disabled_notice() -> None:
    with ui.card().classes("w-full"):
        ui.label("Sandboxes are turned off on this instance.").classes("text-lg").mark("sandboxes-off")
        ui.label("An admin turns them on with AGENT_UI_SANDBOX__BACKEND (auto, docker or local).").classes(
            "text-grey-7"
        )


# The agents template adds the Codex and Claude Code CLIs; your Integrations settings are written into it.
TEMPLATES = {"python": "Python", "agents": "Agents (Codex, Claude Code)"}


def create_form(sandboxes: SandboxService, settings: SandboxSettings, user_id: str,
                on_created: Callable[[SandboxRead], object]) -> None:  # fmt: skip
    """Lifetime, CPU, memory (and network where an admin allows it) within this instance's limits."""
    lifetimes = {label: s for label, s in LIFETIMES.items() if s <= settings.max_timeout_s}
    default_lifetime = next((label for label, s in lifetimes.items() if s == settings.default_timeout_s), None)
    if default_lifetime is None:
        default_lifetime = f"{settings.default_timeout_s // 60} minutes"
        lifetimes = {default_lifetime: settings.default_timeout_s, **lifetimes}
    memories = sorted({m for m in MEMORY_CHOICES if m <= settings.max_memory_mb} | {settings.default_memory_mb})
    with ui.card().classes("w-full gap-3"):
        ui.label("New sandbox").classes("text-lg font-medium")
        ui.label(f"Python 3.11 with a private /workspace; runs on: {sandboxes.describe()}").classes(
            "text-sm text-grey-7"
        ).mark("sandbox-backend")
        with ui.row().classes("items-end gap-3 w-full"):
            template = ui.select(TEMPLATES, value="python", label="Template").props("outlined dense").classes(
                "w-56"
            ).mark("sandbox-template")  # fmt: skip
            lifetime = ui.select(list(lifetimes), value=default_lifetime, label="Lifetime").props(
                "outlined dense"
            ).classes("w-40").mark("sandbox-lifetime")  # fmt: skip
            cpu = ui.number("CPUs", value=settings.default_cpu, min=0.25, max=settings.max_cpu, step=0.25).props(
                "outlined dense"
            ).classes("w-28").mark("sandbox-cpu")  # fmt: skip
            memory_choices = {m: f"{m} MB" for m in memories}
            memory = ui.select(memory_choices, value=settings.default_memory_mb, label="Memory").props(
                "outlined dense"
            ).classes("w-36").mark("sandbox-memory")  # fmt: skip
            network = ui.switch("Network", value=False).mark("sandbox-network") if settings.allow_network else None
            button = ui.button("Create sandbox", icon="add").mark("create-sandbox")

    async def create() -> None:
        button.disable()
        try:
            request = SandboxCreate(template=template.value, timeout_s=lifetimes[lifetime.value], cpu=cpu.value,
                                    memory_mb=memory.value, network=bool(network and network.value))  # fmt: skip
            created = await sandboxes.create(user_id, request)
        except ValidationError:
            ui.notify("Check the limits: CPUs and memory must be positive and within this instance's maxima.",
                      type="warning")  # fmt: skip
            return
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
            return
        finally:
            button.enable()
        on_created(created)

    button.on_click(create)


async def sandbox_list(sandboxes: SandboxService, user_id: str) -> None:
    """The user's sandboxes, newest first; destroyed ones on request."""
    show_all = ui.switch("Show destroyed", value=False).mark("show-destroyed")

    @ui.refreshable
    async def rows() -> None:
        found = await sandboxes.list(user_id, include_destroyed=bool(show_all.value))
        if not found:
            ui.label("No sandboxes yet: create one above.").classes("text-grey-7").mark("no-sandboxes")
            return
        for sandbox in found:
            live = sandbox.status in ("running", "starting")
            card = ui.card().classes("w-full").mark("sandbox-row", f"sandbox-{sandbox.id}")
            with card, ui.row().classes("items-center w-full gap-3"):
                ui.icon("terminal", size="sm").classes("text-primary")
                with ui.column().classes("gap-0 grow min-w-0"):
                    with ui.row().classes("items-center gap-2"):
                        if live:
                            ui.link(sandbox.id, f"/sandboxes/{sandbox.id}").classes("font-mono font-medium")
                        else:
                            ui.label(sandbox.id).classes("font-mono text-grey-7")
                        ui.badge(sandbox.status, color=STATUS_COLORS.get(sandbox.status, "grey"))
                        ui.badge(sandbox.backend, color="blue-grey").props("outline")
                        if sandbox.template != "python":
                            ui.badge(sandbox.template, color="deep-purple").props("outline")
                    ui.label(describe_limits(sandbox)).classes("text-xs text-grey-7")
                    ui.label(describe_expiry(sandbox)).classes("text-xs text-grey-7")
                if live:
                    ui.button("Open", icon="open_in_new",
                                  on_click=lambda s=sandbox: ui.navigate.to(f"/sandboxes/{s.id}")).props(
                            "flat"
                        ).mark(f"open-{sandbox.id}")  # fmt: skip
                    destroy = ui.button(icon="delete", on_click=lambda s=sandbox: ask_destroy(s))
                    named(destroy, f"Destroy {sandbox.id}").props("flat round color=negative")
                    destroy.tooltip("Destroy").mark(f"destroy-{sandbox.id}")

    def ask_destroy(sandbox: SandboxRead) -> None:
        confirm(
            f"Destroy {sandbox.id}? Its workspace and everything running in it are removed.",
            action_label="Destroy",
            marker="confirm-destroy",
            action=lambda: sandboxes.destroy(user_id, sandbox.id),
            then=rows.refresh,
        )

    show_all.on_value_change(rows.refresh)
    await rows()


class FileBrowser:
    """The workspace: folders to walk, files to download, uploads into the folder shown."""

    def __init__(self, sandboxes: SandboxService, user_id: str, sandbox_id: str, *, max_upload_bytes: int) -> None:
        self._sandboxes = sandboxes
        self._user_id = user_id
        self._sandbox_id = sandbox_id
        self.folder = ""
        with ui.card().classes("w-full gap-2").mark("files"):
            with ui.row().classes("items-center w-full gap-1"):
                ui.label("Files").classes("text-lg font-medium")
                self.path_label = (
                    ui.label("/workspace").classes("font-mono text-sm text-grey-7 grow").mark("files-path")
                )
                self.up_button = ui.button(icon="arrow_upward", on_click=self.go_up).props(
                    'flat round dense aria-label="Up one folder"'
                )
                self.up_button.tooltip("Up one folder").mark("files-up")
                ui.button(icon="refresh", on_click=self.refresh).props(
                    'flat round dense aria-label="Refresh the files"'
                ).tooltip("Refresh").mark("files-refresh")
            self.entries = ui.column().classes("w-full gap-0")
            upload = ui.upload(
                label="Upload into this folder",
                multiple=True,
                auto_upload=True,
                max_file_size=max_upload_bytes,
                on_upload=self._uploaded,
                on_multi_upload=lambda: upload.reset(),
                on_rejected=lambda: ui.notify(f"Files are limited to {human_size(max_upload_bytes)}.", type="warning"),
            )
            upload.props("flat bordered").classes("w-full").mark("upload")

    async def refresh(self) -> None:
        try:
            found = await self._sandboxes.read(self._user_id, self._sandbox_id, self.folder or None)
        except DomainError as exc:
            if self.folder:  # the folder went away (a command removed it): show the workspace
                self.folder = ""
                await self.refresh()
                return
            ui.notify(exc.message, type="negative")
            return
        self.path_label.set_text(posixpath.join("/workspace", self.folder).rstrip("/"))
        self.up_button.set_enabled(bool(self.folder))
        self.entries.clear()
        with self.entries:
            if isinstance(found, bytes) or not found:
                ui.label("Empty folder.").classes("text-grey-7 text-sm").mark("files-empty")
                return
            for entry in sorted(found, key=lambda e: (e.type != "dir", e.name.lower())):
                self._row(entry)

    def _row(self, entry: FileEntry) -> None:
        is_dir = entry.type == "dir"
        with ui.row().classes("items-center w-full gap-2 py-1 border-b no-wrap").mark(f"file-{entry.name}"):
            ui.icon("folder" if is_dir else "link" if entry.type == "link" else "description", size="xs").classes(
                "text-amber-8" if is_dir else "text-grey-7"
            )
            if is_dir:
                ui.link(entry.name, "#").classes("font-mono text-sm grow truncate").on(
                    "click.prevent", lambda e=entry: self.open_folder(e.name)
                ).mark(f"dir-{entry.name}")
            else:
                ui.label(entry.name).classes("font-mono text-sm grow truncate")
                ui.label(human_size(entry.size)).classes("text-xs text-grey-7")
                download = ui.button(icon="download", on_click=lambda e=entry: self.download(e.name))
                named(download, f"Download {entry.name}").props("flat round dense")
                download.tooltip("Download").mark(f"download-{entry.name}")

    async def open_folder(self, name: str) -> None:
        self.folder = posixpath.join(self.folder, name)
        await self.refresh()

    async def go_up(self) -> None:
        self.folder = posixpath.dirname(self.folder)
        await self.refresh()

    def download(self, name: str) -> None:
        """The browser fetches the file from the REST API with its session cookie: nothing passes the socket."""
        path = quote(posixpath.join(self.folder, name))
        ui.download.from_url(f"/api/v1/agent/sandboxes/{self._sandbox_id}/files?path={path}", filename=name)

    async def _uploaded(self, event: events.UploadEventArguments) -> None:
        name = posixpath.basename(event.file.name.replace("\\", "/"))
        try:
            data = await event.file.read()
            await self._sandboxes.write(self._user_id, self._sandbox_id, posixpath.join(self.folder, name), data)
        except DomainError as exc:
            ui.notify(f"{name}: {exc.message}", type="negative")
            return
        ui.notify(f"Uploaded {name}", type="positive")
        await self.refresh()


def sandbox_exec_card(call: dict[str, Any], result: dict[str, Any] | None) -> ui.expansion:
    """A command run in the session's sandbox reads as a terminal: command, exit code, output, duration."""
    command = str(as_dict(call.get("arguments")).get("command", ""))
    output = as_dict(result.get("output")) if result is not None and result.get("ok") else {}
    if result is None:
        state, icon = "running…", "hourglass_top"
    elif not result.get("ok"):
        state, icon = f"failed · {result.get('elapsed_ms', 0)} ms", "error"
    else:
        exit_code = output.get("exit_code")
        state = "timed out" if output.get("timed_out") else f"exit {exit_code}"
        state, icon = f"{state} · {result.get('elapsed_ms', 0)} ms", "check_circle" if exit_code == 0 else "warning"
    title = f"sandbox  ·  {state}"
    card = ui.expansion(title, icon=icon, value=True).classes("w-full border rounded").mark("tool-card", "sandbox-card")
    with card:
        ui.code(command, language="bash").classes("w-full").mark("sandbox-command")
        if result is not None and not result.get("ok"):
            ui.label(str(result.get("error", "the command could not run"))).classes("text-negative text-sm")
        for stream, style in (("stdout", ""), ("stderr", "text-red-8")):
            if text := str(output.get(stream) or ""):
                ui.label(text).classes(f"w-full font-mono text-sm whitespace-pre-wrap {style}").mark(
                    f"sandbox-{stream}"
                )
        if output.get("truncated"):
            ui.label("output was cut").classes("text-xs text-grey-7")
        if sandbox_id := output.get("sandbox_id"):
            ui.link("Open the sandbox", f"/sandboxes/{sandbox_id}").classes("text-xs").mark("open-sandbox")
    return card
