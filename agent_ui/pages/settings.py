"""Settings: account, API keys (shown once, with copy; list, deactivate, revoke), MCP servers, integrations, the
voice that reads aloud, and credits."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from agent_ui.components.api_keys import api_keys_section
from agent_ui.components.credits import credits_section
from agent_ui.components.layout import frame
from agent_ui.components.mcp import mcp_sections
from agent_ui.components.voice import voice_section
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site


def register(site: Site) -> None:
    services = site.services

    @ui.page("/settings", title="Settings · agent-ui")
    async def settings_page(request: Request) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(
            site, principal, title="Settings", active="/settings", on_sign_out=sign_out_handler(request, services)
        ):
            with ui.card().classes("w-full"):
                ui.label("Account").classes("text-lg font-medium")
                ui.label(f"{principal.user.email} · {principal.user.role}").mark("account-email")
            await api_keys_section(services, principal)
            await mcp_sections(services, principal)
            await voice_section(services, principal)
            await credits_section(services, principal)
        return None
