"""Runs of every kind: create, launch and supervise, emit events (persisted in batches), throttle progress,
stop, follow from any event id, shut down, and recover the runs of instances that died."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.clock import Clock, utcnow
from services.db.database import Database
from services.db.owned import get_owned
from services.errors import ConflictError, NotFoundError
from services.ids import new_id
from services.instances import LiveInstances
from services.periodic import Periodic
from services.runs.bus import InMemoryRunBus, LiveRun, RunBus, RunEvent
from services.runs.models import ACTIVE, TERMINAL, Run, RunEventBatch, RunStatus
from services.runs.schemas import RunKind
from services.settings import RunSettings

log = logging.getLogger(__name__)


class RunHandle:
    """What a producer (the agent loop, a job) holds while its run is live here."""

    def __init__(self, service: RunService, live: LiveRun, kind: str) -> None:
        self._service = service
        self._live = live
        self.run_id = live.run_id
        self.user_id = live.user_id
        self.kind = kind
        self.finished = False
        self._next_progress_at = 0.0
        self._pending_progress: dict[str, Any] | None = None
        self._progress_timer: asyncio.TimerHandle | None = None

    @property
    def stop_requested(self) -> bool:
        return self._live.stop.is_set()

    @property
    def stop_signal(self) -> asyncio.Event:
        """Set the moment the run is asked to stop: tools and model calls race their work against it."""
        return self._live.stop

    async def wait_stop(self) -> None:
        await self._live.stop.wait()

    def emit(self, type_: str, data: dict[str, Any]) -> RunEvent:
        if type_ in ("done", "error"):  # a progress report still waiting for its turn goes out before the end
            self._send_waiting_progress()
        return self._service.bus.publish(self.run_id, type_, data)

    def progress(
        self, stage: str, done: float | None = None, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress. At most ``progress_per_second`` events go out; a report that comes too soon waits
        for its turn and is replaced by a newer one of its stage, so the last report of each stage is always sent
        (a new stage sends the waiting report of the one before at once)."""
        data = {"stage": stage, "done": done, "total": total, "message": message}
        self._live.progress, self._live.progress_persisted = data, False
        loop = asyncio.get_running_loop()
        if self._pending_progress is not None and self._pending_progress["stage"] != stage:
            self._service.bus.publish(self.run_id, "progress", self._pending_progress)
            self._pending_progress = None
        if loop.time() >= self._next_progress_at and self._progress_timer is None:
            self._send_progress(data)
            return
        self._pending_progress = data
        if self._progress_timer is None:
            self._progress_timer = loop.call_at(self._next_progress_at, self._send_waiting_progress)

    def _send_progress(self, data: dict[str, Any]) -> None:
        self._service.bus.publish(self.run_id, "progress", data)
        self._next_progress_at = asyncio.get_running_loop().time() + 1 / self._service.progress_per_second

    def _send_waiting_progress(self) -> None:
        """Send the report that waits for its turn, if any: when its turn comes, or at once before the end."""
        if self._progress_timer is not None:
            self._progress_timer.cancel()  # harmless when this is the timer firing
            self._progress_timer = None
        if self._pending_progress is not None:
            data, self._pending_progress = self._pending_progress, None
            self._send_progress(data)

    async def flush(self) -> None:
        await self._service.flush(self._live)

    async def finish(
        self,
        status: RunStatus,
        error_code: str | None = None,
        *,
        error_message: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Send the last progress report, persist the last events, the status and the result; end the tail."""
        if self.finished:
            return
        self._send_waiting_progress()
        self.finished = True
        # Shielded: a cancel landing here (a stop, a job cancelled as it ends) must not leave events half written
        # and the run never ended.
        await asyncio.shield(self._service.finish(self._live, status, error_code, error_message, result))


Work = Callable[[RunHandle], Awaitable[None]]


class RunService:
    def __init__(
        self,
        *,
        db: Database,
        owner: str,
        settings: RunSettings | None = None,
        bus: RunBus | None = None,
        flush_interval_s: float = 0.075,
        clock: Clock = utcnow,
    ) -> None:
        """``owner`` is this instance's id (see services.instances): it marks the runs this process supervises."""
        self._db = db
        self._owner = owner
        self._settings = settings or RunSettings()
        self.bus: RunBus = bus or InMemoryRunBus()
        self._clock = clock
        self._kinds: dict[str, RunKind] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_on_stop: set[str] = set()
        self._flusher = Periodic("run-event-flusher", flush_interval_s, self.flush_all)
        self._flush_lock = asyncio.Lock()

    @property
    def progress_per_second(self) -> float:
        return self._settings.progress_per_second

    # -- kinds ---------------------------------------------------------------------------------------

    def register_kind(self, kind: RunKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"run kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def kind(self, name: str) -> RunKind | None:
        return self._kinds.get(name)

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._flusher.start()

    async def stop(self) -> None:
        """Ask every supervised run to stop and give them ``stop_grace_s`` to save what they have; cancel the
        rest. What does not finish is recovered as interrupted by the next instance."""
        for run_id in list(self._tasks):
            self.stop_here(run_id)
        if self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=self._settings.stop_grace_s)
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._flusher.stop()
        await self.flush_all()

    # -- producing -------------------------------------------------------------------------------------

    def new_run(
        self,
        *,
        user_id: str,
        kind: str,
        subject_id: str | None = None,
        status: RunStatus = RunStatus.RUNNING,
        params: dict[str, Any] | None = None,
    ) -> Run:
        """A row for the caller to add inside its own transaction (so a run and what it belongs to appear
        together). Its kind must be registered."""
        if kind not in self._kinds:
            raise ValueError(f"run kind {kind!r} is not registered")
        now = self._clock()
        return Run(id=new_id("run"), user_id=user_id, kind=kind, subject_id=subject_id, status=status,
                   params=params, owner_instance=self._owner, created_at=now,
                   started_at=now if status == RunStatus.RUNNING else None)  # fmt: skip

    def open(self, run: Run) -> RunHandle:
        """Make a run live here. Its row must already be in the database (see :meth:`new_run`)."""
        return RunHandle(self, self.bus.open(run.id, run.user_id), run.kind)

    def launch(self, handle: RunHandle, work: Work, *, cancel_on_stop: bool = False) -> None:
        """Run ``work(handle)`` as a supervised task. A stop request sets the handle's stop signal; with
        ``cancel_on_stop`` it also cancels the task at once (jobs), otherwise the work ends itself (a chat
        turn keeps its partial answer). A run the work leaves unfinished is closed as failed."""

        async def supervised() -> None:
            try:
                await work(handle)
            except asyncio.CancelledError:
                if not handle.finished:
                    await self._close_unfinished(handle, RunStatus.INTERRUPTED, "interrupted")
                raise
            except Exception:
                log.exception("run %s (%s) failed", handle.run_id, handle.kind)
            if not handle.finished:
                await self._close_unfinished(handle, RunStatus.FAILED, "internal")

        run_id = handle.run_id
        task = asyncio.create_task(supervised(), name=f"run-{handle.kind}-{run_id}")
        self._tasks[run_id] = task
        if cancel_on_stop:
            self._cancel_on_stop.add(run_id)

        def forget(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(run_id, None)
            self._cancel_on_stop.discard(run_id)

        task.add_done_callback(forget)

    async def _close_unfinished(self, handle: RunHandle, status: RunStatus, code: str) -> None:
        message = "the server stopped" if status == RunStatus.INTERRUPTED else "the run failed; try again"
        with contextlib.suppress(Exception):
            handle.emit("error", {"code": code, "message": message})
            await handle.finish(status, code, error_message=message)

    async def wait(self, run_id: str, timeout_s: float) -> None:
        """Wait until the run's task here has ended (or the timeout passed)."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.wait([task], timeout=timeout_s)

    # -- reading and stopping ----------------------------------------------------------------------

    async def get(self, principal: Principal, run_id: str, *, kinds: Collection[str] | None = None) -> Run:
        """The caller's run, 404 for anyone else's or for a kind outside ``kinds``; 403 when the caller's key
        lacks the scope of the run's kind."""
        async with self._db.transaction(readonly=True) as session:
            run = await get_owned(session, Run, run_id, principal.user.id, missing="run not found")
        if kinds is not None and run.kind not in kinds:
            raise NotFoundError("run not found")
        kind = self._kinds.get(run.kind)
        if kind is not None:
            require_scope(principal, kind.scope)
        return run

    async def stored_events(self, run_id: str) -> list[RunEvent]:
        """Every event of the run that reached the database, in order."""
        return await self._read(run_id, 0, None)

    async def request_stop(self, principal: Principal, run_id: str, *, kinds: Collection[str] | None = None) -> Run:
        run = await self.get(principal, run_id, kinds=kinds)
        if run.status in TERMINAL:
            raise ConflictError(f"the run has already ended ({run.status})", code="run_not_active")
        kind = self._kinds.get(run.kind)
        if kind is not None and kind.on_stop is not None and await kind.on_stop(run_id):
            return await self.get(principal, run_id)
        if not self.stop_here(run_id):
            raise ConflictError("the run is not active on this server", code="run_not_active")
        return run

    def stop_here(self, run_id: str) -> bool:
        """Stop a run supervised by this instance (its stop signal; a job is also cancelled); False when it is not
        live here."""
        stopped = self.bus.request_stop(run_id)
        live = self.bus.get(run_id)
        if live is not None and live.ended:
            return stopped
        if run_id in self._cancel_on_stop and (task := self._tasks.get(run_id)) is not None:
            task.cancel()
            stopped = True
        return stopped

    async def follow(
        self, principal: Principal, run_id: str, after: int = 0, *, kinds: Collection[str] | None = None
    ) -> AsyncIterator[list[RunEvent]]:
        """Events with id > ``after``, in batches: what left memory from the database, then the live tail
        until the run ends. A run not live here replays from the database."""
        await self.get(principal, run_id, kinds=kinds)
        live = self.bus.get(run_id)
        if live is None:
            return self._replay(run_id, after)
        return self._follow(live, after)

    async def _follow(self, live: LiveRun, after: int) -> AsyncIterator[list[RunEvent]]:
        position = max(after, 0)
        while True:
            if position < live.base:  # dropped from memory after it was persisted
                batch = await self._read(live.run_id, position, live.base)
                if batch:
                    yield batch
                position = live.base
                continue
            if position < live.last_id:
                batch = live.events[position - live.base :]
                position += len(batch)
                yield batch
                continue
            if live.ended:
                return
            await live.changed()

    async def _replay(self, run_id: str, after: int) -> AsyncIterator[list[RunEvent]]:
        batch = await self._read(run_id, after, None)
        if batch:
            yield batch

    async def _read(self, run_id: str, after: int, upto: int | None) -> list[RunEvent]:
        statement = select(RunEventBatch).where(RunEventBatch.run_id == run_id, RunEventBatch.last_id > after)
        if upto is not None:
            statement = statement.where(RunEventBatch.first_id <= upto)
        async with self._db.transaction(readonly=True) as session:
            batches = list((await session.exec(statement.order_by(col(RunEventBatch.first_id)))).all())
        return [RunEvent(event_id, type_, data) for batch in batches for event_id, type_, data in batch.events
                if event_id > after and (upto is None or event_id <= upto)]  # fmt: skip

    # -- persistence -------------------------------------------------------------------------------------

    async def flush(self, live: LiveRun) -> None:
        async with self._flush_lock:
            await self._persist([live])

    async def flush_all(self) -> None:
        async with self._flush_lock:
            await self._persist(self.bus.live_runs())

    async def _persist(self, runs: list[LiveRun]) -> None:
        pending = [
            (live, live.events[live.persisted :])
            for live in runs
            if len(live.events) > live.persisted or not live.progress_persisted
        ]
        if not pending:
            return
        async with self._db.transaction() as session:
            for live, events in pending:
                values: dict[str, Any] = {}
                if events:
                    session.add(
                        RunEventBatch(
                            run_id=live.run_id,
                            first_id=events[0].id,
                            last_id=events[-1].id,
                            events=[[event.id, event.type, event.data] for event in events],
                        )
                    )
                    values["last_event_id"] = events[-1].id
                if not live.progress_persisted:
                    values["progress"] = live.progress
                await session.exec(sa.update(Run).where(col(Run.id) == live.run_id).values(**values))
        window = self._settings.live_event_window
        for live, events in pending:
            live.persisted += len(events)
            live.progress_persisted = True
            live.trim(window)

    async def finish(
        self,
        live: LiveRun,
        status: RunStatus,
        error_code: str | None = None,
        error_message: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Persist the last events, the final status and the result, then end the live tail for readers."""
        await self.flush(live)
        values = {"status": status, "finished_at": self._clock(), "error_code": error_code,
                  "error_message": error_message[:500] if error_message else None, "result": result}  # fmt: skip
        async with self._db.transaction() as session:
            await session.exec(sa.update(Run).where(col(Run.id) == live.run_id).values(**values))
        self.bus.end(live.run_id)
        self.bus.discard(live.run_id)

    async def mark_started(self, run_id: str) -> None:
        """A queued run begins (a job leaving the queue)."""
        async with self._db.transaction() as session:
            await session.exec(
                sa.update(Run).where(col(Run.id) == run_id)
                .values(status=RunStatus.RUNNING, started_at=self._clock())
            )  # fmt: skip

    # -- recovery --------------------------------------------------------------------------------------

    async def recover(self, live: LiveInstances) -> list[Run]:
        """Runs queued or running on an instance that is gone: close their event log with an ``interrupted``
        error and let their kind tidy up. Runs of live instances (this one included) are never touched."""
        async with self._db.transaction() as session:
            statement = (
                select(Run)
                .where(col(Run.status).in_(ACTIVE))
                .where(sa.or_(col(Run.owner_instance).is_(None), col(Run.owner_instance).not_in(live.ids)))
                .with_for_update(skip_locked=True)
            )
            runs = list((await session.exec(statement)).all())
            for run in runs:
                event_id = run.last_event_id + 1
                message = "the server running it stopped"
                session.add(
                    RunEventBatch(
                        run_id=run.id,
                        first_id=event_id,
                        last_id=event_id,
                        events=[[event_id, "error", {"code": "interrupted", "message": message}]],
                    )
                )
                run.status, run.finished_at, run.last_event_id = RunStatus.INTERRUPTED, self._clock(), event_id
                run.error_code, run.error_message = "interrupted", message
                session.add(run)
        if not runs:
            return runs
        log.warning("marked %d runs of instances that are gone as interrupted", len(runs))
        by_kind: dict[str, list[Run]] = {}
        for run in runs:
            by_kind.setdefault(run.kind, []).append(run)
        for name, of_kind in by_kind.items():
            kind = self._kinds.get(name)
            if kind is not None and kind.on_interrupted is not None:
                await kind.on_interrupted(of_kind)
        return runs
