"""The shared frame of every signed-in page: header, navigation, user menu, dark mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nicegui import app, background_tasks, ui

from agent_ui.components.a11y import named
from services.auth import Principal
from services.container import Services

if TYPE_CHECKING:
    from agent_ui.site import Site

# Quasar's default primary (#5898d4) gives white text 3:1; this blue gives it 5.3:1 (WCAG AA) in the header and
# on buttons.
PRIMARY = "#1f6fb2"
# Dark mode: Quasar's grey text classes (grey-7 is #616161) are made for white backgrounds and read as grey on
# grey on #121212; these lift them, and the navigation gets colours of its own in both modes.
# Quasar's colour classes are !important in NiceGUI's last CSS layer, so the overrides sit in that layer too.
THEME_CSS = """
@layer quasar_importants {
  .body--dark .text-grey-6, .body--dark .text-grey-7, .body--dark .text-grey-8 { color: #b8b8b8 !important; }
  .body--dark .text-grey-9, .body--dark .text-black { color: #e6e6e6 !important; }
  .body--dark .text-primary { color: #8cc4f5 !important; }
  .body--dark .text-orange-8 { color: #ffb86c !important; }
  .body--dark .text-amber-8 { color: #ffd166 !important; }
}
.body--dark .nicegui-link, .body--dark a.q-link { color: #8cc4f5; }
.app-nav-item { color: #263238; border-radius: 8px; text-decoration: none; }
.app-nav-item:hover { background: rgba(0, 0, 0, 0.06); }
.app-nav-item--active { background: rgba(31, 111, 178, 0.14); color: #0d3f6b; font-weight: 600; }
.body--dark .app-nav-item { color: #e6e6e6; }
.body--dark .app-nav-item:hover { background: rgba(255, 255, 255, 0.08); }
.body--dark .app-nav-item--active { background: rgba(140, 196, 245, 0.2); color: #ffffff; }
.app-nav-item:focus-visible, .app-nav-toggle:focus-visible { outline: 2px solid #8cc4f5; outline-offset: -2px; }
.app-balance { color: #0d3f6b; }
.q-drawer--mini .app-nav-item { justify-content: center; }
.q-drawer--mini .app-nav-label { display: none; }
"""
NAV_WIDTH = 200
NAV_MINI_WIDTH = 64


def apply_theme() -> None:
    """The app's colours, on every page (signed in or not)."""
    ui.colors(primary=PRIMARY)
    ui.add_css(THEME_CSS)


class BalanceBadge:
    """The user's available credits in the header, kept current: it reads the balance when the page opens and
    again whenever the credits service announces a committed change for this user (a turn's usage, a grant from
    an admin in another browser, a sandbox settling). The service announces changes of this process only (see
    ``BalanceWatchers``); pages may still call :meth:`refresh` after their own spending."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self._services = services
        self._user_id = principal.user.id
        with ui.link(target="/settings#credits").classes("no-underline") as link:
            self.label = ui.badge("… credits", color="white").classes("app-balance text-sm px-2 py-1").mark("balance")
            self.label.tooltip("Available credits")
        self._link = named(link, "Available credits")
        unsubscribe = services.credits.subscribe(self._user_id, self._changed)
        ui.context.client.on_delete(unsubscribe)  # the page is gone for good (not a reconnect)

    def _changed(self, _user_id: str) -> None:
        background_tasks.create(self.refresh(), name="balance-changed")

    async def refresh(self) -> None:
        balance = await self._services.credits.balance(self._user_id)
        text = f"{balance.available:,.4f} credits"
        self.label.set_text(text)
        self._link.props["aria-label"] = f"Available: {text}"


@dataclass
class Shell:
    balance: BalanceBadge


@contextmanager
def frame(
    site: Site,
    principal: Principal,
    *,
    title: str,
    active: str,
    on_sign_out: Callable[[], object],
    compact_nav: bool = False,
) -> Iterator[Shell]:
    """Wrap a page: everything created inside lands in the main column. The tab reads "<title> · agent-ui".
    ``compact_nav``: the navigation starts as the icon rail unless the user chose (the chat wants the width)."""
    services = site.services
    apply_theme()
    ui.page_title(f"{title} · agent-ui")
    dark = ui.dark_mode(app.storage.user.get("dark_mode", False))

    with ui.header(elevated=True).classes("items-center gap-2 px-3"):
        drawer_button = ui.button(icon="menu").props('flat round color=white aria-label="Navigation"')
        drawer_button.classes("app-nav-toggle").tooltip("Show or hide the navigation").mark("nav-toggle")
        ui.link("agent-ui", "/").classes("text-lg font-semibold text-white no-underline")
        ui.space()
        badge = BalanceBadge(services, principal)
        background_tasks.create(badge.refresh(), name="balance", context=ui.context.client)
        dark_button = ui.button(icon="dark_mode").props("flat round color=white").mark("dark-toggle")
        dark_button.tooltip("Dark mode")

        def show_dark(value: bool) -> None:
            named(dark_button, "Dark mode").props(f"aria-pressed={'true' if value else 'false'}")
            dark_button.props(f"icon={'light_mode' if value else 'dark_mode'}")

        def toggle_dark() -> None:
            dark.toggle()
            app.storage.user["dark_mode"] = dark.value
            show_dark(bool(dark.value))

        show_dark(bool(dark.value))
        dark_button.on_click(toggle_dark)
        account = named(ui.button(icon="account_circle"), f"Account: {principal.user.email}")
        with account.props("flat round color=white").mark("user-menu"), ui.menu():
            ui.menu_item(principal.user.email).props("disable")
            ui.menu_item(f"Role: {principal.user.role}").props("disable")
            ui.separator()
            ui.menu_item("Settings", on_click=lambda: ui.navigate.to("/settings"))
            ui.menu_item("Sign out", on_click=on_sign_out).mark("sign-out")

    # Desktop: 200 px, or a rail of icons (remembered per browser); phones: an overlay, closed until asked for.
    mini = bool(app.storage.user.get("nav_mini", compact_nav))
    links: list[tuple[ui.link, str]] = []
    # A page under a hub (a generator under Generate) keeps the hub's entry highlighted.
    current = next((item.parent for item in site.navigation if item.path == active and item.parent), active)
    with (
        ui.left_drawer(bordered=True)
        .props(f"width={NAV_WIDTH} mini-width={NAV_MINI_WIDTH}")
        .classes("column no-wrap")
        .mark("nav") as drawer,
        ui.element("nav").props('aria-label="Main"').classes("column gap-1 p-2 w-full"),
    ):
        for item in site.navigation:
            if (item.admin_only and not principal.is_admin) or item.parent is not None:
                continue
            selected = item.path == current
            link = ui.link(target=item.path).classes(
                "app-nav-item row items-center no-wrap gap-3 px-3 py-2 w-full"
                + (" app-nav-item--active" if selected else "")
            )
            named(link, item.label).mark(f"nav-{item.label.lower()}")
            if selected:
                link.props(f'aria-current="{"page" if item.path == active else "true"}"')
            with link:
                ui.icon(item.icon, size="sm")
                ui.label(item.label).classes("app-nav-label ellipsis")
            links.append((link, item.label))
    with drawer:
        ui.space()
        rail_button = ui.button(on_click=lambda: set_mini(not bool(drawer.props.get("mini")), remember=True))
        rail_button.props("flat round dense")
        rail_button.classes("app-nav-toggle self-end q-ma-sm gt-sm").mark("nav-rail")

    def set_mini(value: bool, *, remember: bool = False) -> None:
        if remember:
            app.storage.user["nav_mini"] = value
        drawer.props["mini"] = value
        named(rail_button, "Expand the navigation" if value else "Collapse the navigation")
        for link, label in links:  # the rail shows icons only: their names come up on hover
            link.props.set_optional("title", label if value else None)
        rail_button.props(f"icon={'chevron_right' if value else 'chevron_left'}")

    set_mini(mini)
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
                ui.label(f"• {line}").classes("text-grey-8")
