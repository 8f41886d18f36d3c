"""The chat card of an MCP server's tool: which server and tool, the arguments, and what the tool said as text
(images and resources it returned are listed by kind)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from agent_ui.components.tool_cards import as_dict, pretty


def mcp_tool_card(call: dict[str, Any], result: dict[str, Any] | None) -> ui.element:
    server = str(call.get("source") or "").partition(":")[2] or "MCP"
    ok = result is not None and result.get("ok")
    state = "running…" if result is None else f"{result.get('elapsed_ms', 0)} ms" + ("" if ok else " · failed")
    icon = "hourglass_top" if result is None else ("extension" if ok else "error")
    card = ui.expansion(f"{server} · {call['name']}  ·  {state}", icon=icon).classes("w-full tool-card")
    card.mark("tool-card")
    with card:
        ui.label("Arguments").classes("text-xs text-grey-7")
        ui.code(pretty(call.get("arguments")), language="json").classes("w-full")
        if result is None:
            return card
        if not ok:
            ui.label("Error").classes("text-xs text-grey-7")
            ui.label(str(result.get("error") or "failed")).classes("text-negative whitespace-pre-wrap").mark(
                "tool-result"
            )
            return card
        output = as_dict(result.get("output"))
        ui.label("Result").classes("text-xs text-grey-7")
        ui.label(str(output.get("text") or "(no text)")).classes("whitespace-pre-wrap font-mono text-sm").mark(
            "tool-result"
        )
        others = [block.get("type", "?") for block in output.get("content") or [] if block.get("type") != "text"]
        if others:
            ui.label("Also returned: " + ", ".join(others)).classes("text-xs text-grey-7")
    return card
