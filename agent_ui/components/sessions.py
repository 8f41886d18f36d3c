"""The chat list beside the conversation: new chat, search (titles and messages), rename, delete.

On a desktop it folds away with the toolbar's toggle (remembered per user); on a phone it is a sheet over the
page, closed until asked for. Each is a CSS class on the chat root that only its screen width reads.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from nicegui import app, background_tasks, ui

from agent_ui.components.confirm import confirm
from services.auth import Principal
from services.chat import ChatService
from services.chat.schemas import SessionRead, SessionUpdate
from services.container import Services
from services.errors import DomainError

FOLDED = "chat-sessions-folded"  # desktop: the list is hidden
OPEN = "chat-sessions-open"  # phone: the sheet is shown
PHONE_MAX_WIDTH = 767  # px, as in chat.css


class SessionList:
    def __init__(
        self,
        services: Services,
        principal: Principal,
        current_id: str | None,
        *,
        root: ui.element,
        on_renamed: Callable[[str, str], None],
    ) -> None:
        self._chat = services.get(ChatService)
        self._user_id = principal.user.id
        self._root = root
        self._on_renamed = on_renamed
        self.current_id = current_id
        self._generation = 0  # the latest search wins: an older one that answers late is dropped
        if app.storage.user.get("chat_list_folded", False):
            root.classes(add=FOLDED)
        with ui.element("div").classes("chat-sessions").mark("sessions"):
            with ui.row().classes("w-full items-center gap-1 no-wrap"):
                ui.button("New chat", icon="add", on_click=lambda: ui.navigate.to("/")).props(
                    "unelevated no-caps"
                ).classes("grow").mark("new-chat")
                ui.button(icon="close", on_click=self.close).props('flat round dense aria-label="Close chats"').classes(
                    "chat-phone-only"
                ).mark("close-sessions")
            self.search = (
                ui.input(placeholder="Search chats")
                .props('dense outlined clearable aria-label="Search chats"')
                .classes("w-full")
                .mark("session-search")
            )
            self.listing = ui.element("div").classes("chat-session-list").mark("session-list")
        ui.element("div").classes("chat-backdrop").on("click", self.close).mark("sessions-backdrop")
        self.search.on_value_change(self.reload)

    def toggle(self, viewport_width: int) -> None:
        """Desktop: fold the list away or back (and remember it); phone: open or close the sheet."""
        if viewport_width > PHONE_MAX_WIDTH:
            folded = FOLDED not in self._root.classes
            app.storage.user["chat_list_folded"] = folded
            if folded:
                self._root.classes(add=FOLDED)
            else:
                self._root.classes(remove=FOLDED)
        elif OPEN in self._root.classes:
            self.close()
        else:
            self._root.classes(add=OPEN)

    def close(self) -> None:
        """The phone's sheet closes."""
        self._root.classes(remove=OPEN)

    def select(self, session_id: str) -> None:
        """A chat just created becomes the current one."""
        self.current_id = session_id
        self._later(self.reload())

    async def reload(self) -> None:
        self._generation += 1
        generation = self._generation
        query = (self.search.value or "").strip()
        page = await self._chat.list_sessions(self._user_id, limit=100, cursor=None, query=query or None)
        if generation != self._generation:
            return
        self.listing.clear()
        with self.listing:
            if not page.items:
                ui.label("No chat matches." if query else "No chats yet.").classes("text-sm text-grey-7 px-2").mark(
                    "sessions-empty"
                )
            for item in page.items:
                self._row(item)

    def _row(self, item: SessionRead) -> None:
        classes = "chat-session" + (" chat-session--selected" if item.id == self.current_id else "")
        with ui.element("div").classes(classes).mark("session-item") as line:
            if item.id == self.current_id:
                line.props('aria-current="page"')
            ui.label(item.title).classes("grow truncate text-sm").mark("session-title")
            with (
                ui.button(icon="more_horiz")
                .props('flat dense round size=sm aria-label="Chat options"')
                .on("click.stop", lambda: None)
                .mark("session-menu"),
                ui.menu(),
            ):
                ui.menu_item("Rename", on_click=lambda i=item: self._rename(i)).mark("rename-session")
                ui.menu_item("Delete", on_click=lambda i=item: self._delete(i)).mark("delete-session")
        line.on("click", lambda i=item: ui.navigate.to(f"/chat/{i.id}"))

    def _rename(self, item: SessionRead) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-96 max-w-full"):
            ui.label("Rename chat").classes("text-lg font-medium")
            title = (
                ui.input("Title", value=item.title).props("outlined autofocus").classes("w-full").mark("rename-input")
            )

            async def save() -> None:
                try:
                    saved = await self._chat.update_session(
                        self._user_id, item.id, SessionUpdate(title=title.value or "")
                    )
                except (DomainError, ValueError):
                    ui.notify("Give the chat a title (up to 200 characters).", type="warning")
                    return
                dialog.close()
                self._on_renamed(item.id, saved.title)
                await self.reload()

            title.on("keydown.enter", save)
            with ui.row().classes("justify-end w-full"):
                ui.button("Cancel", on_click=dialog.close).props("flat")
                ui.button("Save", on_click=save).mark("rename-save")
        dialog.open()

    def _delete(self, item: SessionRead) -> None:
        async def after() -> None:
            if item.id == self.current_id:
                ui.navigate.to("/")
            else:
                await self.reload()

        confirm(
            f"Delete “{item.title}” and its messages?",
            action_label="Delete",
            marker="delete-confirm",
            action=lambda: self._chat.delete_session(self._user_id, item.id),
            then=lambda: self._later(after()),
        )

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        background_tasks.create(work, name="chat-list", context=self.listing)
