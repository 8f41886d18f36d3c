"""The shared frame of every signed-in page: header, navigation, user menu, dark mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nicegui import app, background_tasks, ui

from services.auth import Principal
from services.container import Services

if TYPE_CHECKING:
    from agent_ui.site import Site


class BalanceBadge:
    """The user's available credits in the header; pages refresh it after spending."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self._services = services
        self._user_id = principal.user.id
        with ui.link(target="/settings#credits").classes("no-underline"):
            self.label = (
                ui.badge("… credits", color="white", text_color="primary").classes("text-sm px-2 py-1").mark("balance")
            )
            self.label.tooltip("Available credits")

    async def refresh(self) -> None:
        balance = await self._services.credits.balance(self._user_id)
        self.label.set_text(f"{balance.available:,.4f} credits")


@dataclass
class Shell:
    balance: BalanceBadge


@contextmanager
def frame(
    site: Site, principal: Principal, *, title: str, active: str, on_sign_out: Callable[[], object]
) -> Iterator[Shell]:
    """Wrap a page: everything created inside lands in the main column."""
    services = site.services
    dark = ui.dark_mode(app.storage.user.get("dark_mode", False))

    def toggle_dark() -> None:
        dark.toggle()
        app.storage.user["dark_mode"] = dark.value

    with ui.header(elevated=True).classes("items-center gap-2 px-3"):
        drawer_button = ui.button(icon="menu").props("flat round color=white").mark("nav-toggle")
        ui.link("agent-ui", "/").classes("text-lg font-semibold text-white no-underline")
        ui.space()
        badge = BalanceBadge(services, principal)
        background_tasks.create(badge.refresh(), name="balance", context=ui.context.client)
        ui.button(icon="dark_mode", on_click=toggle_dark).props("flat round color=white").tooltip(
            "Toggle dark mode"
        ).mark("dark-toggle")
        with ui.button(icon="account_circle").props("flat round color=white").mark("user-menu"), ui.menu():
            ui.menu_item(principal.user.email).props("disable")
            ui.menu_item(f"Role: {principal.user.role}").props("disable")
            ui.separator()
            ui.menu_item("Settings", on_click=lambda: ui.navigate.to("/settings"))
            ui.menu_item("Sign out", on_click=on_sign_out).mark("sign-out")

    with ui.left_drawer(bordered=True).props("show-if-above width=220") as drawer:
        for item in site.navigation:
            if item.admin_only and not principal.is_admin:
                continue
            selected = item.path == active
            row_classes = "items-center gap-3 px-3 py-2 rounded w-full " + (
                "bg-primary text-white" if selected else "text-grey-8 dark:text-grey-4"
            )
            with (
                ui.link(target=item.path).classes("no-underline w-full").mark(f"nav-{item.label.lower()}"),
                ui.row().classes(row_classes),
            ):
                ui.icon(item.icon)
                ui.label(item.label)
    drawer_button.on_click(drawer.toggle)

    with ui.column().classes("w-full max-w-5xl mx-auto p-4 gap-4"):
        ui.label(title).classes("text-2xl font-semibold")
        yield Shell(balance=badge)


def coming_soon(what: str, details: list[str]) -> None:
    """A page for a capability that is not built yet says what is coming."""
    with ui.card().classes("w-full"):
        ui.label(f"{what} is coming").classes("text-lg font-medium")
        with ui.column().classes("gap-1"):
            for line in details:
                ui.label(f"• {line}").classes("text-grey-8 dark:text-grey-4")
