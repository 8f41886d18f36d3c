"""Admins: list users, change roles, disable or enable."""

from __future__ import annotations

from decimal import Decimal

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from nicegui import ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.confirm import submit_on_enter
from agent_ui.components.layout import frame
from agent_ui.pages.session import sign_out_handler, signed_in, to_login
from agent_ui.site import Site
from services.auth import Principal, UserRead
from services.auth.models import Role
from services.auth.schemas import UserAdminUpdate
from services.container import Services
from services.credits import GrantRequest
from services.errors import DomainError


def register(site: Site) -> None:
    services = site.services

    @ui.page("/admin/users", title="Users · agent-ui")
    async def users_page(request: Request) -> Response | None:
        principal = await signed_in(request, services)
        if principal is None:
            return to_login(request)
        if not principal.is_admin:
            return RedirectResponse("/", status_code=303)
        with frame(
            site, principal, title="Users", active="/admin/users", on_sign_out=sign_out_handler(request, services)
        ):
            await user_table(services, principal)
        return None


async def user_table(services: Services, principal: Principal) -> None:
    @ui.refreshable
    async def rows() -> None:
        page = await services.auth.list_users(principal, limit=200, cursor=None)
        balances = await services.credits.balances([user.id for user in page.items])
        with ui.card().classes("w-full gap-0"):
            for user in page.items:
                user_row(user, balances.get(user.id))

    def user_row(user: UserRead, balance: Decimal | None) -> None:
        is_self = user.id == principal.user.id
        with ui.row().classes("items-center w-full gap-3 py-2 border-b").mark(f"user-{user.email}"):
            with ui.column().classes("gap-0 grow"):
                ui.label(user.email + ("  (you)" if is_self else "")).classes("font-medium")
                ui.label(f"since {user.created_at:%Y-%m-%d}").classes("text-xs text-grey-7")
            ui.label(f"{balance or 0:,.4f} credits").classes("font-mono text-sm").mark(f"balance-{user.email}")
            ui.button("Grant", icon="add_card", on_click=lambda u=user: grant_dialog(u)).props("flat dense").mark(
                f"grant-{user.email}"
            )
            named(
                ui.select(
                    [Role.USER.value, Role.ADMIN.value],
                    value=user.role.value,
                    on_change=lambda e, u=user: change(u, UserAdminUpdate(role=Role(e.value))),
                ),
                f"Role of {user.email}",
            ).props("dense outlined").classes("w-28").mark(f"role-{user.email}")
            ui.switch(
                "disabled",
                value=user.is_disabled,
                on_change=lambda e, u=user: change(u, UserAdminUpdate(disabled=bool(e.value))),
            ).props("color=negative").mark(f"disable-{user.email}").set_enabled(not is_self)

    def grant_dialog(user: UserRead) -> None:
        with ui.dialog() as dialog, ui.card().classes("gap-2") as card:
            ui.label(f"Grant credits to {user.email}").classes("font-medium")
            amount = ui.number("Credits", value=10, min=0.000001, format="%.6f").props("outlined autofocus")
            amount.mark("grant-amount")
            reason = ui.input("Reason (optional)").props("outlined").mark("grant-reason")

            async def submit() -> None:
                if not grant_button.enabled:  # a second Enter or click while the first grant is under way
                    return
                grant_button.disable()
                try:
                    request = GrantRequest(user_id=user.id, amount=Decimal(str(amount.value or 0)),
                                           reason=reason.value or None)  # fmt: skip
                    await services.credits.grant(principal, request)
                except (ValidationError, DomainError) as exc:
                    ui.notify(getattr(exc, "message", "Give a positive amount."), type="negative")
                    return
                finally:
                    grant_button.enable()
                dialog.close()
                ui.notify(f"Granted {request.amount} credits to {user.email}", type="positive")
                rows.refresh()

            with ui.row().classes("justify-end w-full"):
                ui.button("Cancel", on_click=dialog.close).props("flat")
                grant_button = ui.button("Grant", on_click=submit).mark("grant-submit")
        submit_on_enter(card, submit, focus=False)
        dialog.open()

    async def change(user: UserRead, update: UserAdminUpdate) -> None:
        try:
            await services.auth.update_user(principal, user.id, update)
            ui.notify(f"Updated {user.email}", type="positive")
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
        rows.refresh()

    await rows()
