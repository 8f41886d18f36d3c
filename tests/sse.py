"""Reading Server-Sent Events in tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    id: int
    type: str
    data: dict[str, Any]


def parse(text: str) -> list[Event]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "event" in fields:
            events.append(Event(int(fields.get("id", "0")), fields["event"], json.loads(fields.get("data", "{}"))))
    return events


def types(events: list[Event]) -> list[str]:
    """Event types with runs of the same type collapsed (content.delta × n → content.delta)."""
    collapsed: list[str] = []
    for event in events:
        if not collapsed or collapsed[-1] != event.type:
            collapsed.append(event.type)
    return collapsed


def text_of(events: list[Event]) -> str:
    return "".join(event.data["text"] for event in events if event.type == "content.delta")
