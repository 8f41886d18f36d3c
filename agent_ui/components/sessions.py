"""The chat sessions sidebar: new, search, rename, delete."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui

from agent_ui.components.confirm import confirm
from services.auth import Principal
from services.chat import ChatService
from services.chat.schemas import SessionRead, SessionUpdate
from services.container import Services
from services.errors import DomainError


async def sessions_sidebar(services: Services, principal: Principal, current_id: str | None) -> Callable[[str], None]:
    """Builds the sidebar; returns a function that marks a (new) chat as the current one and redraws the list."""
    user_id = principal.user.id
    chat = services.get(ChatService)
    current = {"id": current_id}
    with ui.column().classes("w-64 shrink-0 gap-2 max-md:w-full").mark("sessions"):
        ui.button("New chat", icon="add", on_click=lambda: ui.navigate.to("/")).classes("w-full").mark("new-chat")
        search = (
            ui.input(placeholder="Search chats")
            .props("dense outlined clearable")
            .classes("w-full")
            .mark("session-search")
        )

        @ui.refreshable
        async def listing() -> None:
            page = await chat.list_sessions(user_id, limit=100, cursor=None, query=search.value or None)
            if not page.items:
                ui.label("No chats yet." if not search.value else "No chat matches.").classes("text-sm text-grey-7")
            for item in page.items:
                row(item)

        def row(item: SessionRead) -> None:
            selected = item.id == current["id"]
            classes = "w-full items-center gap-1 rounded px-2 py-1 cursor-pointer no-wrap " + (
                "bg-blue-1 dark:bg-blue-10" if selected else "hover:bg-grey-2 dark:hover:bg-grey-9"
            )
            with ui.row().classes(classes).mark("session-item") as line:
                ui.label(item.title).classes("grow truncate text-sm").mark("session-title")
                with (
                    ui.button(icon="more_vert").props("flat dense round size=sm").on("click.stop", lambda: None),
                    ui.menu(),
                ):
                    ui.menu_item("Rename", on_click=lambda i=item: rename(i)).mark("rename-session")
                    ui.menu_item("Delete", on_click=lambda i=item: delete(i)).mark("delete-session")
            line.on("click", lambda i=item: ui.navigate.to(f"/chat/{i.id}"))

        def rename(item: SessionRead) -> None:
            with ui.dialog() as dialog, ui.card():
                title = ui.input("Title", value=item.title).props("outlined autofocus").mark("rename-input")

                async def save() -> None:
                    try:
                        await chat.update_session(user_id, item.id, SessionUpdate(title=title.value or ""))
                    except (DomainError, ValueError):
                        ui.notify("Give the chat a title (up to 200 characters).", type="warning")
                        return
                    dialog.close()
                    listing.refresh()

                with ui.row().classes("justify-end w-full"):
                    ui.button("Cancel", on_click=dialog.close).props("flat")
                    ui.button("Save", on_click=save).mark("rename-save")
            dialog.open()

        def delete(item: SessionRead) -> None:
            def after() -> None:
                if item.id == current["id"]:
                    ui.navigate.to("/")
                else:
                    listing.refresh()

            confirm(
                f"Delete “{item.title}” and its messages?",
                action_label="Delete",
                marker="delete-confirm",
                action=lambda: chat.delete_session(user_id, item.id),
                then=after,
            )

        search.on("update:model-value", lambda: listing.refresh(), throttle=0.3)
        await listing()

    def select(session_id: str) -> None:
        current["id"] = session_id
        listing.refresh()

    return select
