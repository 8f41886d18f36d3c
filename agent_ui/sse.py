"""Server-Sent Events out of run events (events.md): `id`, `event`, one JSON `data` line, pings every 15 s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query
from pydantic import Field
from sse_starlette import EventSourceResponse

from services.runs import RunEvent

PING_SECONDS = 15
SSE_RESPONSE = {"content": {"text/event-stream": {}}, "description": "Server-Sent Events (see docs/events.md)"}
# A resume point: event ids are positive and fit in 63 bits (a larger one could never be an event of a run).
EventId = Annotated[int, Field(ge=0, le=2**63 - 1)]


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


def resume_point(
    last_event: Annotated[
        EventId | None, Header(alias="Last-Event-ID", description="resume after this event id (wins over ?after=)")
    ] = None,
    after: Annotated[EventId | None, Query(description="resume after this event id (Last-Event-ID wins)")] = None,
) -> int:
    """Where to resume: the `Last-Event-ID` header (what browsers send), else `?after=`, else the start. Either
    one past 2^63 - 1 is a 422: no run has such an event."""
    if last_event is not None:
        return last_event
    return after or 0


# Where a reader resumes a run's events: `Last-Event-ID` (what browsers send) or `?after=`.
ResumeFrom = Annotated[int, Depends(resume_point)]
