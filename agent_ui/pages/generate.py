"""The Generate hub at /generate: a card for each generator a capability registered (a ``NavItem`` with
``parent="/generate"``), the ones still to come, and below them the user's jobs (see ``components/jobs_panel``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from agent_ui.components.jobs_panel import JobsPanel
from agent_ui.components.layout import frame
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import NavItem, Site

HUB = "/generate"
NAVIGATION = (NavItem("Generate", HUB, "auto_awesome", order=20),)
# Generators not built yet: (title, icon, what it will make).
COMING: tuple[tuple[str, str, str], ...] = ()
HUB_CSS = """
.generate-grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); width: 100%; }
.generate-card { color: inherit; text-decoration: none; border-radius: 8px; display: block; height: 100%; }
.generate-card > .q-card { height: 100%; transition: box-shadow 0.15s, transform 0.15s; }
.generate-card:hover > .q-card { box-shadow: 0 4px 14px rgba(0, 0, 0, 0.18); transform: translateY(-1px); }
.generate-card:focus-visible { outline: 2px solid #1f6fb2; outline-offset: 2px; }
.generate-soon { opacity: 0.75; }
"""


def generators(site: Site, *, admin: bool) -> list[NavItem]:
    """The generators the capabilities registered under the hub, in their order."""
    return [item for item in site.navigation if item.parent == HUB and (admin or not item.admin_only)]


def register(site: Site) -> None:
    services = site.services

    @ui.page(HUB, title="Generate · agent-ui")
    async def generate_page(request: Request) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(site, principal, title="Generate", active=HUB, on_sign_out=sign_out_handler(request, services)):
            ui.add_css(HUB_CSS)
            ui.label("Make something from a topic, your text or your documents.").classes("text-grey-8")
            with ui.element("div").classes("generate-grid").mark("generators"):
                for item in generators(site, admin=principal.is_admin):
                    with ui.link(target=item.path).classes("generate-card").mark(f"generator-{item.label.lower()}"):
                        _card(item.label, item.icon, item.description, soon=False)
                for title, icon, what in COMING:
                    with ui.element("div").classes("generate-soon").mark(f"generator-{title.lower()}"):
                        _card(title, icon, what, soon=True)
            jobs = JobsPanel(services.jobs, principal)
            await jobs.refresh()
        return None


def _card(title: str, icon: str, description: str, *, soon: bool) -> None:
    with ui.card().classes("w-full gap-2"):
        with ui.row().classes("items-center no-wrap gap-3 w-full"):
            ui.icon(icon, size="md").classes("text-grey-7" if soon else "text-primary")
            ui.label(title).classes("text-lg font-medium grow")
            if soon:
                ui.badge("Coming soon", color="grey-7").props("outline").mark("coming-soon")
            else:
                ui.icon("arrow_forward").classes("text-primary")
        ui.label(description).classes("text-sm text-grey-8")
