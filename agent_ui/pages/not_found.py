"""The page for a path nothing serves: inside the app's frame when signed in, a plain card otherwise, always with a
way home and the status 404. It replaces NiceGUI's own error page ("HTTPException: 404"); the API and NiceGUI's
endpoints keep answering a 404 with JSON."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from nicegui import Client, app, ui

from agent_ui.components.layout import apply_theme, frame
from agent_ui.errors import API_PREFIX, http_error_handler
from agent_ui.pages.session import sign_out_handler, signed_in
from agent_ui.site import Site

TITLE = "Page not found"


def register(site: Site) -> None:
    services = site.services

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        if not _wants_page(request):
            return await http_error_handler(request, exc)
        principal = await signed_in(request, services)
        with Client(ui.page("", title=f"{TITLE} · agent-ui"), request=request) as client:
            if principal is None:
                _signed_out_header()
                _message(request.url.path, heading=True)
            else:
                with frame(site, principal, title=TITLE, active="", on_sign_out=sign_out_handler(request, services)):
                    _message(request.url.path, heading=False)
        return client.build_response(request, 404)


def _wants_page(request: Request) -> bool:
    """A browser asking for a page: not an API call, not one of NiceGUI's endpoints (which set ``endpoint`` to
    themselves; an unmatched path inside the UI mount sets it to the mounted app), not a form post."""
    path = request.url.path
    if path == API_PREFIX or path.startswith(API_PREFIX + "/") or request.method not in {"GET", "HEAD"}:
        return False
    endpoint = request.scope.get("endpoint")
    return endpoint is None or endpoint is app or bool(request.scope.get("nicegui_page_path"))


def _signed_out_header() -> None:
    apply_theme()
    with ui.header(elevated=True).classes("items-center gap-2 px-3"):
        ui.link("agent-ui", "/").classes("text-lg font-semibold text-white no-underline").mark("home")
        ui.space()
        ui.link("Sign in", "/login").classes("text-white").mark("sign-in")


def _message(path: str, *, heading: bool) -> None:
    """The card; ``heading`` unless the frame already shows the title above it."""
    with (
        ui.column().classes("w-full items-center py-12 px-4"),
        ui.card().classes("w-full max-w-md items-center text-center gap-3 p-6").mark("not-found"),
    ):
        ui.icon("explore_off", size="3rem").classes("text-grey-6")
        ui.label("404").classes("text-sm font-medium text-grey-7 dark:text-grey-5 tracking-widest")
        if heading:
            ui.label(TITLE).classes("text-xl font-semibold")
        ui.label("There is no page at").classes("text-grey-8 dark:text-grey-4")
        ui.label(path).classes("font-mono text-sm break-all -mt-2").mark("missing-path")
        ui.label("The link may be mistyped, or the page may have moved.").classes("text-grey-8 dark:text-grey-4")
        ui.button("Go home", icon="home").props("href=/ unelevated no-caps").mark("go-home")
