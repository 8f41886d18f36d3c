"""One confirmation dialog for destructive actions; service errors become a notification."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from services.errors import DomainError


def confirm(question: str, *, action_label: str, marker: str, action: Callable[[], Awaitable[object]],
            then: Callable[[], object]) -> None:  # fmt: skip
    """Ask ``question``; on yes run ``action``, tell the user if it failed, then run ``then``."""
    with ui.dialog() as dialog, ui.card():
        ui.label(question)
        with ui.row().classes("justify-end w-full"):
            ui.button("Cancel", on_click=dialog.close).props("flat")

            async def confirmed() -> None:
                try:
                    await action()
                except DomainError as exc:
                    ui.notify(exc.message, type="negative")
                dialog.close()
                then()

            ui.button(action_label, color="negative", on_click=confirmed).mark(marker)
    dialog.open()
