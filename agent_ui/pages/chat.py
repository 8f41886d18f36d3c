"""Chat: a new conversation at /, an existing one at /chat/{session_id}."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import ui

from agent_ui.components.chat import ChatView
from agent_ui.components.chat_assets import add_chat_assets
from agent_ui.components.layout import frame
from agent_ui.components.sessions import SessionList
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.chat import ChatService
from services.errors import NotFoundError


def tab_title(session_title: str | None) -> str:
    return f"{session_title or 'New chat'} · agent-ui"


def register(site: Site) -> None:
    services = site.services

    async def chat_page(request: Request, session_id: str | None) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        chat = services.get(ChatService)
        title = None
        if session_id is not None:
            try:
                title = (await chat.get_session(principal.user.id, session_id)).title
            except NotFoundError:
                return RedirectResponse("/", status_code=303)
        add_chat_assets()
        with (
            frame(site, principal, title="Chat", active="/", on_sign_out=sign_out_handler(request, services),
                  compact_nav=True) as shell,
            ui.element("div").classes("chat-root").mark("chat-root") as root,
        ):
            ui.page_title(tab_title(title))  # the chat's own title rather than the frame's "Chat"

            def renamed(renamed_id: str, new_title: str) -> None:
                if renamed_id == sessions.current_id:
                    ui.page_title(tab_title(new_title))

            async def created(new_id: str) -> None:
                sessions.select(new_id)
                ui.navigate.history.replace(f"/chat/{new_id}")
                ui.page_title(tab_title((await chat.get_session(principal.user.id, new_id)).title))

            sessions = SessionList(services, principal, session_id, root=root, on_renamed=renamed)
            await sessions.reload()
            view = ChatView(site, principal, session_id, on_session_created=created,
                            on_turn_finished=shell.balance.refresh, toggle_sessions=sessions.toggle)  # fmt: skip
            await view.build()
        return None

    @ui.page("/", title="New chat · agent-ui")
    async def new_chat_page(request: Request) -> Response | None:
        return await chat_page(request, None)

    @ui.page("/chat/{session_id}", title="Chat · agent-ui")
    async def session_chat_page(request: Request, session_id: str) -> Response | None:
        return await chat_page(request, session_id)
