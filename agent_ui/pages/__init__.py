"""NiceGUI pages. Registered by the composition root with the services they read."""

from __future__ import annotations

from agent_ui.pages import admin, auth, chat, placeholders, sandboxes, settings
from services.container import Services


def register_pages(services: Services) -> None:
    auth.register(services)
    chat.register(services)
    placeholders.register(services)
    sandboxes.register(services)
    settings.register(services)
    admin.register(services)
