"""Chat: a new conversation at /, an existing one at /chat/{session_id}."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import ui

from agent_ui.components.chat import ChatView
from agent_ui.components.layout import frame
from agent_ui.components.sessions import sessions_sidebar
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.chat import ChatService
from services.errors import NotFoundError


def register(site: Site) -> None:
    services = site.services

    async def chat_page(request: Request, session_id: str | None) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        if session_id is not None:
            try:
                await services.get(ChatService).get_session(principal.user.id, session_id)
            except NotFoundError:
                return RedirectResponse("/", status_code=303)
        with (
            frame(site, principal, title="Chat", active="/", on_sign_out=sign_out_handler(request, services)) as shell,
            ui.row().classes("w-full gap-4 items-start no-wrap max-md:flex-col"),
        ):
            select_session = await sessions_sidebar(services, principal, session_id)

            def session_created(new_id: str) -> None:
                select_session(new_id)
                ui.navigate.history.replace(f"/chat/{new_id}")

            with ui.column().classes("grow min-w-0 gap-3 max-md:w-full"):
                view = ChatView(
                    site, principal, session_id, on_session_created=session_created,
                    on_turn_finished=shell.balance.refresh,
                )  # fmt: skip
                await view.build()
        return None

    @ui.page("/", title="Chat · agent-ui")
    async def new_chat_page(request: Request) -> Response | None:
        return await chat_page(request, None)

    @ui.page("/chat/{session_id}", title="Chat · agent-ui")
    async def session_chat_page(request: Request, session_id: str) -> Response | None:
        return await chat_page(request, session_id)
