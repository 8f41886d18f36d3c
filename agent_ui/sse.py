"""Server-Sent Events out of run events (events.md): `id`, `event`, one JSON `data` line, pings every 15 s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse

from services.runs import RunEvent

PING_SECONDS = 15


def encode(event: RunEvent) -> bytes:
    data = json.dumps(event.data, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


async def _frames(batches: AsyncIterator[list[RunEvent]]) -> AsyncIterator[bytes]:
    # Everything that is ready goes out in one write: a busy stream costs one send per batch, not per token.
    async for batch in batches:
        if batch:
            yield b"".join(encode(event) for event in batch)


def event_stream(batches: AsyncIterator[list[RunEvent]]) -> EventSourceResponse:
    return EventSourceResponse(
        _frames(batches), ping=PING_SECONDS, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def last_event_id(header: str | None, query: int | None) -> int:
    """Where to resume: the `Last-Event-ID` header (what browsers send), else `?after=`, else the start."""
    if header and header.strip().isdigit():
        return int(header.strip())
    return max(query or 0, 0)
