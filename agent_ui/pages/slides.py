"""Decks at /generate/slides: the form, the job's progress by stage, then the deck's slides as a grid of
thumbnails to edit, reorder, rewrite and download. The deck being shown is in the URL (``?deck=<id>``, the id the
chat's card links with), so a reload shows it again, or its progress while it is made."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from agent_ui.components.layout import frame
from agent_ui.components.slides import (
    DeckForm,
    DeckView,
    RecentDecks,
    add_slides_assets,
    disabled_notice,
    slides_layout,
)
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.generation import DeckService
from services.jobs import JobRead
from services.rag.service import RagService

PATH = "/generate/slides"


def register(site: Site) -> None:
    services = site.services

    @ui.page(PATH, title="Slides · agent-ui")
    async def slides_page(request: Request, deck: str | None = None) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(site, principal, title="Slides", active=PATH, on_sign_out=sign_out_handler(request, services)):
            decks = services.find(DeckService)
            if decks is None:
                disabled_notice()
                return None
            add_slides_assets()

            async def submitted(started: JobRead) -> None:
                await opened(started.id)
                view.reveal()

            async def opened(deck_id: str | None) -> None:
                ui.navigate.history.replace(f"{PATH}?deck={deck_id}" if deck_id else PATH)
                recent.current = deck_id
                await view.show(deck_id)
                await recent.refresh()

            with slides_layout():
                view = DeckView(decks=decks, jobs=services.jobs, principal=principal,
                                on_ended=lambda: recent.refresh(), on_deleted=lambda: opened(None))  # fmt: skip
                form = DeckForm(decks=decks, rag=services.find(RagService), principal=principal,
                                max_template_bytes=services.settings.generation.max_template_bytes,
                                on_submitted=submitted)  # fmt: skip
                recent = RecentDecks(decks, services.jobs, principal, deck)
            await form.build()
            await recent.refresh()
            await view.show(deck)
        return None
