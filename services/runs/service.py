"""Runs: create, emit events (persisted in batches), stop, follow from any event id, and recover after a crash."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from services.clock import Clock, utcnow
from services.db.database import Database
from services.db.owned import get_owned
from services.errors import ConflictError
from services.ids import new_id
from services.periodic import Periodic
from services.runs.bus import InMemoryRunBus, LiveRun, RunBus, RunEvent
from services.runs.models import TERMINAL, Run, RunEventBatch, RunStatus

log = logging.getLogger(__name__)


class RunHandle:
    """What a producer (the agent loop, a job) holds while its run is live."""

    def __init__(self, service: RunService, live: LiveRun) -> None:
        self._service = service
        self._live = live
        self.run_id = live.run_id

    @property
    def stop_requested(self) -> bool:
        return self._live.stop.is_set()

    async def wait_stop(self) -> None:
        await self._live.stop.wait()

    def emit(self, type_: str, data: dict[str, Any]) -> RunEvent:
        return self._service.bus.publish(self.run_id, type_, data)

    async def flush(self) -> None:
        await self._service.flush(self._live)

    async def finish(self, status: RunStatus, error_code: str | None = None) -> None:
        await self._service.finish(self._live, status, error_code)


class RunService:
    def __init__(
        self,
        *,
        db: Database,
        bus: RunBus | None = None,
        flush_interval_s: float = 0.075,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self.bus: RunBus = bus or InMemoryRunBus()
        self._clock = clock
        self._flusher = Periodic("run-event-flusher", flush_interval_s, self.flush_all)
        self._flush_lock = asyncio.Lock()

    async def start(self) -> None:
        await self.recover_interrupted()
        self._flusher.start()

    async def stop(self) -> None:
        await self._flusher.stop()
        await self.flush_all()

    def open(self, run: Run) -> RunHandle:
        """Make a run live here. Its row must already be in the database (see :meth:`new_run`)."""
        return RunHandle(self, self.bus.open(run.id, run.user_id))

    def new_run(self, *, user_id: str, kind: str, session_id: str | None = None) -> Run:
        """A row for the caller to add inside its own transaction (so a run and what it belongs to appear together)."""
        return Run(id=new_id("run"), user_id=user_id, kind=kind, session_id=session_id, created_at=self._clock())

    async def get(self, user_id: str, run_id: str) -> Run:
        async with self._db.transaction(readonly=True) as session:
            return await get_owned(session, Run, run_id, user_id, missing="run not found")

    async def request_stop(self, user_id: str, run_id: str) -> Run:
        run = await self.get(user_id, run_id)
        if run.status in TERMINAL:
            raise ConflictError(f"the run has already ended ({run.status})", code="run_not_active")
        if not self.bus.request_stop(run_id):
            raise ConflictError("the run is not active on this server", code="run_not_active")
        return run

    async def follow(self, user_id: str, run_id: str, after: int = 0) -> AsyncIterator[list[RunEvent]]:
        """Events with id > ``after``, in batches: from memory while the run is live here, else from the database."""
        await self.get(user_id, run_id)  # 404 for others' runs
        live = self.bus.follow(run_id, after)
        if live is not None:
            return live
        return self._replay(run_id, after)

    async def _replay(self, run_id: str, after: int) -> AsyncIterator[list[RunEvent]]:
        async with self._db.transaction(readonly=True) as session:
            statement = (
                select(RunEventBatch)
                .where(RunEventBatch.run_id == run_id, RunEventBatch.last_id > after)
                .order_by(col(RunEventBatch.first_id))
            )
            batches = list((await session.exec(statement)).all())
        for batch in batches:
            yield [RunEvent(event_id, type_, data) for event_id, type_, data in batch.events if event_id > after]

    async def flush(self, live: LiveRun) -> None:
        async with self._flush_lock:
            await self._persist([live])

    async def flush_all(self) -> None:
        async with self._flush_lock:
            await self._persist(self.bus.live_runs())

    async def _persist(self, runs: list[LiveRun]) -> None:
        pending = [(live, live.events[live.persisted :]) for live in runs if len(live.events) > live.persisted]
        if not pending:
            return
        async with self._db.transaction() as session:
            for live, events in pending:
                session.add(
                    RunEventBatch(
                        run_id=live.run_id,
                        first_id=events[0].id,
                        last_id=events[-1].id,
                        events=[[event.id, event.type, event.data] for event in events],
                    )
                )
                await session.exec(
                    sa.update(Run).where(col(Run.id) == live.run_id).values(last_event_id=events[-1].id)  # type: ignore[call-overload]
                )
        for live, events in pending:
            live.persisted += len(events)

    async def finish(self, live: LiveRun, status: RunStatus, error_code: str | None = None) -> None:
        """Persist the last events and the final status, then end the live tail for readers."""
        await self.flush(live)
        async with self._db.transaction() as session:
            await session.exec(
                sa.update(Run)  # type: ignore[call-overload]
                .where(col(Run.id) == live.run_id)
                .values(status=status, finished_at=self._clock(), error_code=error_code)
            )
        self.bus.end(live.run_id)
        self.bus.discard(live.run_id)

    async def recover_interrupted(self) -> list[Run]:
        """Runs left ``running`` by a crash: close their event log with an ``interrupted`` error."""
        async with self._db.transaction() as session:
            runs = list((await session.exec(select(Run).where(Run.status == RunStatus.RUNNING))).all())
            for run in runs:
                event_id = run.last_event_id + 1
                session.add(
                    RunEventBatch(
                        run_id=run.id,
                        first_id=event_id,
                        last_id=event_id,
                        events=[[event_id, "error", {"code": "interrupted", "message": "the server restarted"}]],
                    )
                )
                run.status = RunStatus.INTERRUPTED
                run.finished_at = self._clock()
                run.last_event_id = event_id
                run.error_code = "interrupted"
                session.add(run)
        if runs:
            log.warning("marked %d runs left running by a previous process as interrupted", len(runs))
        return runs
