"""Sandboxes: the list with a create form at /sandboxes, one sandbox's terminals and files at /sandboxes/{id}."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import ui

from agent_ui.components.confirm import confirm
from agent_ui.components.layout import frame
from agent_ui.components.sandboxes import (
    STATUS_COLORS,
    FileBrowser,
    create_form,
    describe_expiry,
    describe_limits,
    disabled_notice,
    sandbox_list,
)
from agent_ui.components.terminal import TerminalTabs
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.errors import DomainError, NotFoundError
from services.sandbox import SandboxService


def register(site: Site) -> None:
    services = site.services

    @ui.page("/sandboxes", title="Sandboxes · agent-ui")
    async def sandboxes_page(request: Request) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(site, principal, title="Sandboxes", active="/sandboxes",
                   on_sign_out=sign_out_handler(request, services)):  # fmt: skip
            sandboxes = services.find(SandboxService)
            if sandboxes is None:
                disabled_notice()
                return None
            create_form(sandboxes, services.settings.sandbox, principal.user.id,
                        on_created=lambda created: ui.navigate.to(f"/sandboxes/{created.id}"))  # fmt: skip
            await sandbox_list(sandboxes, principal.user.id)
        return None

    @ui.page("/sandboxes/{sandbox_id}", title="Sandbox · agent-ui")
    async def sandbox_page(request: Request, sandbox_id: str) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        sandboxes = services.find(SandboxService)
        if sandboxes is None:
            return RedirectResponse("/sandboxes", status_code=303)
        user_id = principal.user.id
        try:
            sandbox = await sandboxes.get(user_id, sandbox_id)
        except NotFoundError:
            return RedirectResponse("/sandboxes", status_code=303)
        with frame(site, principal, title="Sandbox", active="/sandboxes",
                   on_sign_out=sign_out_handler(request, services)) as shell:  # fmt: skip
            ui.page_title(f"{sandbox.id} · Sandboxes · agent-ui")
            with ui.card().classes("w-full"), ui.row().classes("items-center w-full gap-3"):
                ui.button(icon="arrow_back", on_click=lambda: ui.navigate.to("/sandboxes")).props(
                    'flat round aria-label="Back to sandboxes"'
                ).tooltip("All sandboxes")
                with ui.column().classes("gap-0 grow min-w-0"):
                    with ui.row().classes("items-center gap-2"):
                        ui.label(sandbox.id).classes("font-mono text-lg").mark("sandbox-id")
                        ui.badge(sandbox.status, color=STATUS_COLORS.get(sandbox.status, "grey")).mark("sandbox-status")
                        ui.badge(sandbox.backend, color="blue-grey").props("outline")
                        if sandbox.template != "python":
                            ui.badge(sandbox.template, color="deep-purple").props("outline")
                    ui.label(describe_limits(sandbox)).classes("text-xs text-grey-7")
                    expiry = ui.label(describe_expiry(sandbox)).classes("text-xs text-grey-7").mark("sandbox-expiry")

                async def keepalive() -> None:
                    try:
                        kept = await sandboxes.keepalive(user_id, sandbox_id)
                    except DomainError as exc:
                        ui.notify(exc.message, type="negative")
                        return
                    expiry.set_text(describe_expiry(kept))
                    await shell.balance.refresh()

                def ask_destroy() -> None:
                    confirm(f"Destroy {sandbox_id}? Its workspace and everything running in it are removed.",
                            action_label="Destroy", marker="confirm-destroy",
                            action=lambda: sandboxes.destroy(user_id, sandbox_id),
                            then=lambda: ui.navigate.to("/sandboxes"))  # fmt: skip

                ui.button("Keep alive", icon="update", on_click=keepalive).props("flat").mark("keepalive")
                ui.button("Destroy", icon="delete", color="negative", on_click=ask_destroy).props("flat").mark(
                    "destroy"
                )

            with ui.row().classes("w-full gap-4 items-start no-wrap max-lg:flex-col"):
                with ui.column().classes("grow min-w-0 max-lg:w-full"):
                    files: FileBrowser | None = None

                    async def files_changed() -> None:  # output paused: a command may have made files
                        if files is not None:
                            await files.refresh()

                    terminals = TerminalTabs(sandboxes, user_id, sandbox_id, on_quiet=files_changed)
                with ui.column().classes("w-[26rem] max-lg:w-full"):
                    files = FileBrowser(sandboxes, user_id, sandbox_id,
                                        max_upload_bytes=services.settings.sandbox.max_upload_bytes)  # fmt: skip
                    await files.refresh()
                await terminals.load()
        return None
