"""Live runs in this process: a bounded window of their recent events, readers, and stop signals.

This is the in-process implementation of the run bus; a Redis-backed one can take its place so that
stop and resume work from any instance (same methods, same semantics).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RunEvent:
    id: int
    type: str
    data: dict[str, Any]


@dataclass
class LiveRun:
    """A run being produced here. ``events`` holds the ids ``base + 1 ..``: older ones were persisted and
    dropped from memory (readers fetch them from the database). Readers sleep on ``changed`` in between."""

    run_id: str
    user_id: str
    events: list[RunEvent] = field(default_factory=list)
    base: int = 0  # ids up to here are no longer in memory
    persisted: int = 0  # events[:persisted] are in the database
    progress: dict[str, Any] | None = None
    progress_persisted: bool = True
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False
    wake: asyncio.Future[None] | None = None

    @property
    def last_id(self) -> int:
        return self.base + len(self.events)

    def notify(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)
        self.wake = None

    async def changed(self) -> None:
        if self.wake is None:
            self.wake = asyncio.get_running_loop().create_future()
        await asyncio.shield(self.wake)

    def trim(self, keep: int) -> None:
        """Drop persisted events beyond the newest ``keep`` from memory."""
        drop = min(self.persisted, len(self.events) - keep)
        if drop > 0:
            del self.events[:drop]
            self.base += drop
            self.persisted -= drop


class RunBus(Protocol):
    """Where live runs meet their readers."""

    def open(self, run_id: str, user_id: str) -> LiveRun: ...
    def get(self, run_id: str) -> LiveRun | None: ...
    def publish(self, run_id: str, type_: str, data: dict[str, Any]) -> RunEvent: ...
    def end(self, run_id: str) -> None: ...
    def discard(self, run_id: str) -> None: ...
    def request_stop(self, run_id: str) -> bool: ...
    def live_runs(self) -> list[LiveRun]: ...


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
        event = RunEvent(live.last_id + 1, type_, data)
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
