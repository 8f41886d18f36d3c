"""Prose at /generate/prose: the form, the text streaming in as it is written, then Copy and Download .md, and the
user's recent texts. The text shown is in the URL (``?run=<id>``), so a reload or a link (the chat's card) shows it
again: a finished one from the database, one still being written as it goes on."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import ui

from agent_ui.components.layout import frame
from agent_ui.components.prose import (
    ProseForm,
    ProseView,
    RecentTexts,
    add_prose_assets,
    disabled_notice,
    prose_grid,
)
from agent_ui.components.resources import PassagePanel
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.generation import ProseService
from services.rag import RagService

PATH = "/generate/prose"


def register(site: Site) -> None:
    services = site.services

    @ui.page(PATH, title="Prose · agent-ui")
    async def prose_page(request: Request, run: str | None = None) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        with frame(site, principal, title="Prose", active=PATH, on_sign_out=sign_out_handler(request, services)):
            prose = services.find(ProseService)
            if prose is None:
                disabled_notice()
                return None
            add_prose_assets()
            rag = services.find(RagService)
            passages = PassagePanel(rag, principal) if rag is not None else None

            async def started(run_id: str) -> None:
                ui.navigate.history.replace(f"{PATH}?run={run_id}")
                recent.current = run_id
                await view.show(run_id)
                view.reveal()
                await recent.refresh()

            with prose_grid():
                view = ProseView(runs=services.runs, principal=principal, passages=passages,
                                 on_ended=lambda: recent.refresh(), on_running=lambda on: form.busy(on))  # fmt: skip
                form = ProseForm(prose=prose, rag=rag, principal=principal, on_started=started)
                recent = RecentTexts(prose, principal, run, path=PATH)
            await form.build()
            await recent.refresh()
            shown = await view.show(run)
            if shown is not None:
                form.fill(shown.params or {})
        return None
