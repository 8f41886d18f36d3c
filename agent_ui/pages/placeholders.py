"""Pages of capabilities not built yet: they say what is coming, inside the real frame. None is waiting now (the
generators still to come are cards on the Generate hub, agent_ui/pages/generate.py)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from agent_ui.components.layout import coming_soon, frame
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import NavItem, Site

# path -> (title, what is coming, details)
PLANNED: dict[str, tuple[str, str, list[str]]] = {}


# Where the planned pages sit in the navigation, among the capabilities' own.
NAVIGATION: tuple[NavItem, ...] = ()


def register(site: Site) -> None:
    for path, (title, what, details) in PLANNED.items():
        _register_one(site, path, title, what, details)


def _register_one(site: Site, path: str, title: str, what: str, details: list[str]) -> None:
    services = site.services

    @ui.page(path, title=f"{title} · agent-ui")
    async def placeholder_page(request: Request) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(site, principal, title=title, active=path, on_sign_out=sign_out_handler(request, services)):
            coming_soon(what, details)
        return None
