"""Live runs in this process: their events in memory, readers, and stop signals.

This is the in-process implementation of the run bus; a Redis-backed one can take its place so that
stop and resume work from any instance (same methods, same semantics).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RunEvent:
    id: int
    type: str
    data: dict[str, Any]


@dataclass
class LiveRun:
    """A run being produced here. Readers walk ``events`` by index and sleep on ``wake`` in between."""

    run_id: str
    user_id: str
    events: list[RunEvent] = field(default_factory=list)
    persisted: int = 0  # events[:persisted] are in the database
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    wake: asyncio.Future[None] | None = None

    def notify(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)
        self.wake = None

    async def changed(self) -> None:
        if self.wake is None:
            self.wake = asyncio.get_running_loop().create_future()
        await asyncio.shield(self.wake)


class RunBus(Protocol):
    """Where live runs meet their readers. ``follow`` returns None for a run not live on this bus."""

    def open(self, run_id: str, user_id: str) -> LiveRun: ...
    def get(self, run_id: str) -> LiveRun | None: ...
    def publish(self, run_id: str, type_: str, data: dict[str, Any]) -> RunEvent: ...
    def end(self, run_id: str) -> None: ...
    def discard(self, run_id: str) -> None: ...
    def request_stop(self, run_id: str) -> bool: ...
    def live_runs(self) -> list[LiveRun]: ...
    def follow(self, run_id: str, after: int) -> AsyncIterator[list[RunEvent]] | None: ...


class InMemoryRunBus:
    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}

    def open(self, run_id: str, user_id: str) -> LiveRun:
        live = self._runs[run_id] = LiveRun(run_id, user_id)
        return live

    def get(self, run_id: str) -> LiveRun | None:
        return self._runs.get(run_id)

    def live_runs(self) -> list[LiveRun]:
        return list(self._runs.values())

    def publish(self, run_id: str, type_: str, data: dict[str, Any]) -> RunEvent:
        live = self._runs[run_id]
        event = RunEvent(len(live.events) + 1, type_, data)
        live.events.append(event)
        live.notify()
        return event

    def end(self, run_id: str) -> None:
        live = self._runs[run_id]
        live.ended = True
        live.notify()

    def discard(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    def request_stop(self, run_id: str) -> bool:
        live = self._runs.get(run_id)
        if live is None or live.ended:
            return False
        live.stop.set()
        return True

    def follow(self, run_id: str, after: int) -> AsyncIterator[list[RunEvent]] | None:
        live = self._runs.get(run_id)
        return None if live is None else _follow(live, after)


async def _follow(live: LiveRun, after: int) -> AsyncIterator[list[RunEvent]]:
    """Events after ``after`` from memory, then the live tail, until the run ends; in batches of what is ready."""
    position = max(after, 0)
    while True:
        if position < len(live.events):
            batch = live.events[position:]
            position += len(batch)
            yield batch
            continue
        if live.ended:
            return
        await live.changed()
