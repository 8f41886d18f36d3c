"""Admins: list users, change roles, disable or enable."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import ui

from agent_ui.components.layout import frame
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from services.auth import Principal, UserRead
from services.auth.models import Role
from services.auth.schemas import UserAdminUpdate
from services.container import Services
from services.errors import DomainError


def register(services: Services) -> None:
    @ui.page("/admin/users", title="Users · agent-ui")
    async def users_page(request: Request) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        if not principal.is_admin:
            return RedirectResponse("/", status_code=303)
        with frame(principal, title="Users", active="/admin/users", on_sign_out=sign_out_handler(request, services)):
            await user_table(services, principal)
        return None


async def user_table(services: Services, principal: Principal) -> None:
    @ui.refreshable
    async def rows() -> None:
        page = await services.auth.list_users(limit=200, cursor=None)
        with ui.card().classes("w-full gap-0"):
            for user in page.items:
                user_row(user)

    def user_row(user: UserRead) -> None:
        is_self = user.id == principal.user.id
        with ui.row().classes("items-center w-full gap-3 py-2 border-b").mark(f"user-{user.email}"):
            with ui.column().classes("gap-0 grow"):
                ui.label(user.email + ("  (you)" if is_self else "")).classes("font-medium")
                ui.label(f"since {user.created_at:%Y-%m-%d}").classes("text-xs text-grey-7")
            ui.select(
                [Role.USER.value, Role.ADMIN.value],
                value=user.role.value,
                on_change=lambda e, u=user: change(u, UserAdminUpdate(role=Role(e.value))),
            ).props("dense outlined").classes("w-28").mark(f"role-{user.email}")
            ui.switch(
                "disabled",
                value=user.is_disabled,
                on_change=lambda e, u=user: change(u, UserAdminUpdate(disabled=bool(e.value))),
            ).props("color=negative").mark(f"disable-{user.email}").set_enabled(not is_self)

    async def change(user: UserRead, update: UserAdminUpdate) -> None:
        try:
            await services.auth.update_user(principal, user.id, update)
            ui.notify(f"Updated {user.email}", type="positive")
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
        rows.refresh()

    await rows()
