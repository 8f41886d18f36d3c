"""Dialogs: one confirmation for destructive actions (service errors become a notification), Enter to submit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from services.errors import DomainError

# Enter anywhere in the dialog submits it, except on a button (which Enter presses itself: Cancel stays
# Cancel) and in a multi-line field (where Enter is a new line).
ENTER_OUTSIDE_BUTTONS = (
    "(event) => { if (event.key === 'Enter' && !event.isComposing && !event.target.closest('button, textarea')) "
    "{ event.preventDefault(); emit(); } }"
)


def submit_on_enter(card: ui.card, submit: Callable[[], object], *, focus: bool = True) -> ui.card:
    """Pressing Enter in a dialog's ``card`` runs ``submit``, as its main button would. With ``focus`` the card
    takes the focus when the dialog opens (Quasar focuses ``[data-autofocus][tabindex]``), so Enter works at once;
    a dialog with a field to fill focuses that field instead (its ``autofocus`` prop)."""
    if focus:
        card.props("tabindex=-1 data-autofocus").classes("outline-none")
    return card.on("keydown", submit, js_handler=ENTER_OUTSIDE_BUTTONS)


def confirm(question: str, *, action_label: str, marker: str, action: Callable[[], Awaitable[object]],
            then: Callable[[], object]) -> None:  # fmt: skip
    """Ask ``question``; on yes (the button or Enter) run ``action``, tell the user if it failed, then run ``then``."""
    with ui.dialog() as dialog, ui.card() as card:
        ui.label(question)
        with ui.row().classes("justify-end w-full"):
            ui.button("Cancel", on_click=dialog.close).props("flat")

            async def confirmed() -> None:
                if not dialog.value:  # already answered (a double press)
                    return
                dialog.close()
                try:
                    await action()
                except DomainError as exc:
                    ui.notify(exc.message, type="negative")
                then()

            ui.button(action_label, color="negative", on_click=confirmed).mark(marker)
    submit_on_enter(card, confirmed)
    dialog.open()
