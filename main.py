"""Composition root: settings → database → services → REST routers → NiceGUI pages.

``uvicorn main:app`` serves both the web UI and the REST API from one process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from nicegui import app as ui_app
from nicegui import helpers, ui
from nicegui.storage import Storage

from agent_ui.api.v1 import include_api
from agent_ui.api_docs import add_api_docs
from agent_ui.capabilities import WebCapability
from agent_ui.capabilities import chat as chat_capability
from agent_ui.capabilities import generation as generation_capability
from agent_ui.capabilities import mcp as mcp_capability
from agent_ui.capabilities import rag as rag_capability
from agent_ui.capabilities import sandboxes as sandbox_capability
from agent_ui.capabilities import tts as tts_capability
from agent_ui.components.tool_cards import ToolCards
from agent_ui.errors import add_api_fallback, install_error_handlers
from agent_ui.openapi import document_common_errors
from agent_ui.pages import NAVIGATION, register_pages
from agent_ui.security import OriginCheck, SecurityHeaders
from agent_ui.site import Site
from services.auth.passwords import Passwords
from services.container import app_version, build_services
from services.security import derive_key, load_or_create_secret
from services.settings import Settings

# What this product does beyond the core, one line each (docs/capabilities.md).
CAPABILITIES: tuple[WebCapability, ...] = (
    chat_capability.CAPABILITY,
    sandbox_capability.CAPABILITY,
    rag_capability.CAPABILITY,
    mcp_capability.CAPABILITY,
    tts_capability.CAPABILITY,
    generation_capability.CAPABILITY,
)


def _operation_id(route: APIRoute) -> str:
    tag = str(route.tags[0]) if route.tags else "default"
    return f"{tag}-{route.name}".replace("_", "-")


def create_app(
    settings: Settings | None = None,
    capabilities: Sequence[WebCapability] = CAPABILITIES,
    *,
    passwords: Passwords | None = None,
) -> FastAPI:
    """The app. ``passwords`` is for tests only (a cheap hash); the product always uses argon2's defaults."""
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    secret = load_or_create_secret(settings.secret_key, settings.data_dir)
    services = build_services(settings, secret, [capability.build for capability in capabilities], passwords=passwords)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Awaited here so a server only accepts requests once the database is migrated, and fails
        # to start if it cannot be. NiceGUI's own startup hook (below) runs the same idempotent start
        # in the background, which is what the NiceGUI `user` test fixture drives.
        await services.start()
        try:
            async with AsyncExitStack() as mounted:
                for running in mounted_lifespans:
                    await mounted.enter_async_context(running())
                yield
        finally:
            await services.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="agent-ui API",
        version=app_version(),
        description="REST API of agent-ui. Authenticate with the session cookie, or `Authorization: Bearer sk_...`.",
        generate_unique_id_function=_operation_id,
        docs_url=None,  # served by add_api_docs from local files, below
        redoc_url=None,
    )
    app.state.services = services
    app.state.own_lifespan = lifespan  # what NiceGUI's wrapper (below) runs between its own startup and shutdown
    install_error_handlers(app)
    document_common_errors(app)
    trusted = [url for url in (settings.server.public_url, *settings.server.trusted_origins) if url]
    app.add_middleware(OriginCheck, trusted=trusted)
    app.add_middleware(SecurityHeaders)  # outermost, so refusals carry the headers too
    include_api(app, [router for capability in capabilities for router in capability.routers])
    mounted_lifespans = [capability.mount(app, services) for capability in capabilities if capability.mount]
    add_api_fallback(app)  # after the routers, before the UI mount takes every other path
    add_api_docs(app)

    if "NICEGUI_STORAGE_PATH" not in os.environ and not helpers.is_pytest():
        Storage.path = (settings.data_dir / "ui-storage").resolve()
    navigation = sorted([*NAVIGATION, *(item for c in capabilities for item in c.navigation)], key=lambda i: i.order)
    cards = ToolCards({name: card for c in capabilities for name, card in c.tool_cards.items()})
    site = Site(services=services, navigation=tuple(navigation), tool_cards=cards)
    register_pages(site)
    for capability in capabilities:
        if capability.pages is not None:
            capability.pages(site)
    ui_app.on_startup(services.start)
    ui_app.on_shutdown(services.stop)
    ui.run_with(
        app,
        title=settings.server.title,
        favicon="🤖",
        dark=None,
        storage_secret=derive_key(secret, "ui-storage").hex(),
        show_welcome_message=False,
    )
    return app


app = create_app()
