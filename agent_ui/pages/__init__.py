"""NiceGUI pages of the core (sign-in, settings, admin, the Generate hub, pages still to come). Capabilities
register their own."""

from __future__ import annotations

from agent_ui.pages import admin, auth, generate, not_found, placeholders, settings
from agent_ui.site import NavItem, Site

NAVIGATION = (
    *generate.NAVIGATION,
    *placeholders.NAVIGATION,
    NavItem("Settings", "/settings", "settings", order=90),
    NavItem("Users", "/admin/users", "group", order=95, admin_only=True),
)


def register_pages(site: Site) -> None:
    auth.register(site)
    generate.register(site)
    placeholders.register(site)
    settings.register(site)
    admin.register(site)
    not_found.register(site)
