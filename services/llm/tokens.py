"""A rough, model-independent token estimate: about four characters a token, plus framing per message."""

from __future__ import annotations

import json
from typing import Any

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def message_tokens(message: dict[str, Any]) -> int:
    calls = message.get("tool_calls")
    extra = estimate_tokens(json.dumps(calls)) if calls else 0
    return estimate_tokens(str(message.get("content") or "")) + extra + MESSAGE_OVERHEAD_TOKENS
