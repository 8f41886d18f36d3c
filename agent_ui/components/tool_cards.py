"""Tool-call cards in chat: a registry of renderers by tool name or tool group, with a plain JSON card for the rest.

A capability registers its renderers (the sandbox's terminal card for ``sandbox_exec``); the chat view asks
the registry for each call, so no shared component knows any capability's tools.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nicegui import app, ui

from services.auth import Principal
from services.container import Services

CONTEXT_KEY = "tool-card-context"

# A card for one call: the call event's data, and its result's (None while it runs).
ToolCardRenderer = Callable[[dict[str, Any], dict[str, Any] | None], ui.element]


@dataclass(frozen=True)
class CardContext:
    """Who is looking, and the services: what a card needs to look its work up (a job it follows). The view that
    draws the cards provides it for its page (kept in the client's own storage: one page, one signed-in user)."""

    services: Services
    principal: Principal


def provide_card_context(services: Services, principal: Principal) -> None:
    """For the cards drawn on this page from now on."""
    app.storage.client[CONTEXT_KEY] = CardContext(services, principal)


def card_context() -> CardContext | None:
    """The page's context; None where no view provided one (a card then shows what the call said)."""
    found = app.storage.client.get(CONTEXT_KEY)
    return found if isinstance(found, CardContext) else None


def as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def json_card(call: dict[str, Any], result: dict[str, Any] | None) -> ui.element:
    """Any tool: its arguments and its result (or error) as JSON."""
    ok = result is not None and result.get("ok")
    state = "running…" if result is None else f"{result.get('elapsed_ms', 0)} ms" + ("" if ok else " · failed")
    icon = "hourglass_top" if result is None else ("check_circle" if ok else "error")
    card = ui.expansion(f"{call['name']}  ·  {state}", icon=icon).classes("w-full tool-card").mark("tool-card")
    with card:
        ui.label("Arguments").classes("text-xs text-grey-7")
        ui.code(pretty(call.get("arguments")), language="json").classes("w-full")
        if result is not None:
            ui.label("Result" if ok else "Error").classes("text-xs text-grey-7")
            body = result.get("output") if ok else result.get("error")
            ui.code(pretty(body), language="json").classes("w-full").mark("tool-result")
    return card


class ToolCards:
    def __init__(self, renderers: dict[str, ToolCardRenderer] | None = None) -> None:
        self._renderers: dict[str, ToolCardRenderer] = dict(renderers or {})

    def register(self, name_or_group: str, renderer: ToolCardRenderer) -> None:
        if name_or_group in self._renderers:
            raise ValueError(f"a tool card for {name_or_group!r} is registered twice")
        self._renderers[name_or_group] = renderer

    def render(self, call: dict[str, Any], result: dict[str, Any] | None) -> ui.element:
        """The card for a call: by tool name, else by its group (the source before any ``:``), else JSON."""
        group = str(call.get("source") or "").split(":", 1)[0]
        renderer = self._renderers.get(str(call.get("name"))) or self._renderers.get(group) or json_card
        return renderer(call, result)
