"""A rough, model-independent token estimate: about four characters a token, plus framing per message."""

from __future__ import annotations

from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def message_tokens(message: dict[str, Any]) -> int:
    return estimate_tokens(str(message.get("content") or "")) + MESSAGE_OVERHEAD_TOKENS
