"""The chat's card for generation tools (a JSON card until the job card comes)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from agent_ui.components.tool_cards import json_card


def generation_card(call: dict[str, Any], result: dict[str, Any] | None) -> ui.element:
    return json_card(call, result)
