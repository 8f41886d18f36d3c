"""The API keys card: create (the key is shown once, with a copy button), list, deactivate, revoke."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from nicegui import ui

from agent_ui.components.a11y import named
from agent_ui.components.confirm import confirm
from services.auth import Principal
from services.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, ApiKeyUpdate
from services.clock import utcnow
from services.container import Services
from services.errors import DomainError

EXPIRY_CHOICES: dict[str, timedelta | None] = {
    "Never": None,
    "30 days": timedelta(days=30),
    "90 days": timedelta(days=90),
    "1 year": timedelta(days=365),
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


async def api_keys_section(services: Services, principal: Principal) -> None:
    user_id = principal.user.id

    with ui.card().classes("w-full gap-3"):
        ui.label("API keys").classes("text-lg font-medium")
        ui.label("Use a key as `Authorization: Bearer sk_...` against /api/v1. It is shown once.").classes(
            "text-sm text-grey-7"
        )
        with ui.row().classes("items-end gap-3 w-full"):
            name = (
                ui.input("Key name", placeholder="e.g. laptop script")
                .props("outlined dense")
                .classes("grow")
                .mark("key-name")
            )
            expiry = (
                ui.select(list(EXPIRY_CHOICES), value="Never", label="Expires")
                .props("outlined dense")
                .classes("w-36")
                .mark("key-expiry")
            )
            create_button = ui.button("Create key", icon="add").mark("create-key")

        @ui.refreshable
        async def key_list() -> None:
            page = await services.api_keys.list(user_id, limit=200, cursor=None)
            if not page.items:
                ui.label("No keys yet.").classes("text-grey-7").mark("no-keys")
                return
            for key in page.items:
                key_row(key)

        def key_row(key: ApiKeyRead) -> None:
            with ui.row().classes("items-center w-full gap-3 py-1 border-b").mark(f"key-{key.id}"):
                with ui.column().classes("gap-0 grow"):
                    ui.label(key.name).classes("font-medium")
                    ui.label(
                        f"{key.prefix}…  ·  scopes {', '.join(key.scopes)}  ·  created {_when(key.created_at)}"
                        f"  ·  last used {_when(key.last_used_at)}  ·  expires {_when(key.expires_at)}"
                    ).classes("text-xs text-grey-7 font-mono")
                ui.badge("active" if key.is_active else "inactive", color="positive" if key.is_active else "grey")
                named(
                    ui.switch(value=key.is_active, on_change=lambda e, k=key: set_active(k, bool(e.value))),
                    f"{key.name} active",
                ).tooltip("Active").mark(f"toggle-{key.id}")
                named(ui.button(icon="delete", on_click=lambda k=key: confirm_revoke(k)), f"Revoke {key.name}").props(
                    "flat round color=negative"
                ).tooltip("Revoke").mark("revoke-key", f"revoke-{key.id}")

        async def set_active(key: ApiKeyRead, active: bool) -> None:
            try:
                await services.api_keys.update(user_id, key.id, ApiKeyUpdate(is_active=active))
            except DomainError as exc:
                ui.notify(exc.message, type="negative")
            key_list.refresh()

        def confirm_revoke(key: ApiKeyRead) -> None:
            confirm(
                f"Revoke “{key.name}”? Programs using it stop working at once.",
                action_label="Revoke",
                marker="confirm-revoke",
                action=lambda: services.api_keys.revoke(user_id, key.id),
                then=key_list.refresh,
            )

        def show_once(created: ApiKeyCreated) -> None:
            with ui.dialog().props("persistent") as dialog, ui.card().classes("gap-3 w-[40rem] max-w-full"):
                ui.label("Your new API key").classes("text-lg font-medium")
                ui.label("Copy it now: it will not be shown again.").classes("text-orange-8")
                # A read-only field: selectable by hand (focus selects it all), one Copy button that says if it worked.
                ui.input("Your API key", value=created.api_key).props("readonly outlined").classes(
                    "w-full font-mono"
                ).on("focus", js_handler="(event) => event.target.select()").mark("new-key")

                async def copy() -> None:
                    # ui.clipboard.write neither waits nor reports a refusal (no permission, not a secure
                    # origin): ask the browser ourselves and say what happened.
                    copied = await ui.run_javascript(
                        f"return navigator.clipboard ? navigator.clipboard.writeText({json.dumps(created.api_key)})"
                        ".then(() => true, () => false) : false"
                    )
                    if copied:
                        ui.notify("Copied", type="positive")
                    else:
                        ui.notify("The browser did not allow copying: select the key and copy it.", type="warning")

                with ui.row().classes("justify-end w-full"):
                    ui.button("Copy", icon="content_copy", on_click=copy).mark("copy-key")
                    ui.button("Done", on_click=dialog.close).props("flat").mark("close-key")
            dialog.open()

        async def create() -> None:
            if not create_button.enabled:  # Enter pressed again while the key is being made
                return
            delta = EXPIRY_CHOICES.get(expiry.value or "Never")
            create_button.disable()
            try:
                request = ApiKeyCreate(name=name.value or "", expires_at=(utcnow() + delta) if delta else None)
                created = await services.api_keys.create(principal, request)
            except DomainError as exc:
                ui.notify(exc.message, type="negative")
                return
            except ValueError:
                ui.notify("Give the key a name (up to 128 characters).", type="warning")
                return
            finally:
                create_button.enable()
            name.set_value("")
            show_once(created)
            key_list.refresh()

        create_button.on_click(create)
        name.on("keydown.enter", create)
        await key_list()
