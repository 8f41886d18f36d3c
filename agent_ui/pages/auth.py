"""Sign-in and sign-up pages, and the ticket hand-off that turns a UI sign-in into the session cookie."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import app, ui
from pydantic import ValidationError

from agent_ui.components.layout import apply_theme
from agent_ui.pages.session import safe_next, signed_in
from agent_ui.session_cookie import set_session_cookie
from agent_ui.site import Site
from services.auth.schemas import RegisterRequest
from services.auth.throttle import LoginThrottledError, wait_text
from services.errors import DomainError


def register(site: Site) -> None:
    services = site.services

    @app.get("/auth/handoff", include_in_schema=False)
    async def handoff(request: Request, ticket: str = "", next: str = "/") -> Response:
        try:
            token = await services.auth.redeem_login_ticket(ticket, user_agent=request.headers.get("user-agent"))
        except DomainError:
            return RedirectResponse("/login?expired=1", status_code=303)
        response = RedirectResponse(safe_next(next), status_code=303)
        set_session_cookie(
            response,
            token,
            max_age=int(services.auth.session_ttl.total_seconds()),
            secure=services.settings.auth.cookie_secure,
        )
        return response

    async def sign_in_as(user_id: str, next_path: str) -> None:
        ticket = await services.auth.issue_login_ticket(user_id)
        ui.navigate.to("/auth/handoff?" + urlencode({"ticket": ticket, "next": next_path}))

    @ui.page("/login", title="Sign in · agent-ui")
    async def login_page(request: Request, next: str = "/", expired: str = "") -> Response | None:
        if await signed_in(request, services):
            return RedirectResponse(safe_next(next), status_code=303)
        client_ip = request.client.host if request.client else None
        with auth_card("Sign in"):
            if expired:
                ui.label("That sign-in took too long; please sign in again.").classes("text-orange-8")
            email = ui.input("Email").props("outlined autocomplete=username").classes("w-full").mark("email")
            password = (
                ui.input("Password", password=True, password_toggle_button=True)
                .props("outlined autocomplete=current-password")
                .classes("w-full")
                .mark("password")
            )
            error = ui.label().classes("text-negative").props('role="alert"').mark("error")

            async def submit() -> None:
                error.set_text("")
                try:
                    user = await services.auth.verify_credentials(
                        (email.value or "").strip().lower(), password.value or "", client_ip=client_ip
                    )
                except LoginThrottledError as exc:
                    error.set_text(f"Too many sign-in attempts. Try again in {wait_text(exc.retry_after_s)}.")
                    return
                except DomainError as exc:
                    error.set_text(exc.message)
                    return
                await sign_in_as(user.id, safe_next(next))

            for field in (email, password):
                field.on("keydown.enter", submit)
            ui.button("Sign in", on_click=submit).classes("w-full").mark("submit")
            with ui.row().classes("gap-1 text-sm"):
                ui.label("No account yet?")
                ui.link("Create one", "/register").mark("to-register")
        return None

    @ui.page("/register", title="Create account · agent-ui")
    async def register_page(request: Request) -> Response | None:
        if await signed_in(request, services):
            return RedirectResponse("/", status_code=303)
        with auth_card("Create your account"):
            email = ui.input("Email").props("outlined autocomplete=username").classes("w-full").mark("email")
            password = (
                ui.input("Password (8 characters or more)", password=True, password_toggle_button=True)
                .props("outlined autocomplete=new-password")
                .classes("w-full")
                .mark("password")
            )
            confirm = (
                ui.input("Repeat password", password=True)
                .props("outlined autocomplete=new-password")
                .classes("w-full")
                .mark("confirm")
            )
            error = ui.label().classes("text-negative").props('role="alert"').mark("error")

            async def submit() -> None:
                error.set_text("")
                if password.value != confirm.value:
                    error.set_text("The passwords differ.")
                    return
                try:
                    user = await services.auth.register(
                        RegisterRequest(email=email.value or "", password=password.value or "")
                    )
                except ValidationError as exc:
                    error.set_text(_first_problem(exc))
                    return
                except DomainError as exc:
                    error.set_text(exc.message)
                    return
                await sign_in_as(user.id, "/")

            for field in (email, password, confirm):
                field.on("keydown.enter", submit)
            ui.button("Create account", on_click=submit).classes("w-full").mark("submit")
            with ui.row().classes("gap-1 text-sm"):
                ui.label("Have an account?")
                ui.link("Sign in", "/login").mark("to-login")
        return None


def auth_card(title: str):  # type: ignore[no-untyped-def]
    apply_theme()
    ui.query("body").classes("bg-grey-2")
    with ui.column().classes("absolute-center items-center gap-4"):
        ui.label("agent-ui").classes("text-3xl font-bold text-primary")
        card = ui.card().classes("w-96 max-w-full p-6 gap-3")
        with card:
            ui.label(title).classes("text-xl font-medium")
    return card


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    field = str(problem["loc"][0]) if problem.get("loc") else "input"
    message = str(problem.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"{field.capitalize()}: {message}"
