"""Turning stored messages into what a model reads, within its context window."""

from __future__ import annotations

import json
from typing import Any

from services.chat.models import ChatMessage
from services.llm.tokens import message_tokens


def flatten_parts(parts: list[dict[str, Any]]) -> str:
    """An assistant turn as plain text, tool use included, so any model can read it back."""
    lines: list[str] = []
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            lines.append(part.get("text", ""))
        elif kind == "tool_call":
            lines.append(f"[called {part.get('name')}({part.get('arguments')})]")
        elif kind == "tool_result":
            body = part.get("output") if part.get("ok") else f"error: {part.get('error')}"
            lines.append(f"[result: {json.dumps(body, default=str)[:2000]}]")
    return "\n".join(line for line in lines if line).strip()


def branch(messages: list[ChatMessage], leaf_id: str) -> list[ChatMessage]:
    """The path from the root to ``leaf_id`` through parent links (one branch of the conversation)."""
    by_id = {message.id: message for message in messages}
    path: list[ChatMessage] = []
    current = by_id.get(leaf_id)
    while current is not None and len(path) <= len(messages):
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return list(reversed(path))


def build_history(*, system_prompt: str, path: list[ChatMessage], budget_tokens: int) -> list[dict[str, Any]]:
    """System prompt first, then the newest messages that fit the budget (oldest dropped first)."""
    system = {"role": "system", "content": system_prompt}
    remaining = budget_tokens - message_tokens(system)
    kept: list[dict[str, Any]] = []
    for message in reversed(path):
        if message.role == "user" or message.status in ("complete", "cancelled"):
            text = flatten_parts(message.content)
        else:
            continue  # an answer that failed or is being written says nothing useful
        if not text:
            continue
        entry = {"role": message.role, "content": text}
        cost = message_tokens(entry)
        if cost > remaining and kept:
            break
        kept.append(entry)
        remaining -= cost
    return [system, *reversed(kept)]
