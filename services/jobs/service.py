"""Jobs: runs of a registered kind with parameters, progress and artifacts, waiting in a queue.

A job is a run (the job id is the run id), so it streams, replays and stops like any run. Jobs wait in this
process's queue with a concurrency limit per kind, for heavy jobs and in all (settings), so that podcasts,
ingestion and LibreOffice never starve chat on a small machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlmodel import col, select

from services.artifacts import ArtifactRead, ArtifactService
from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import grants
from services.clock import Clock, utcnow
from services.credits import CreditService, Hold
from services.db.database import Database
from services.db.pagination import Page, keyset_page
from services.errors import ConflictError, DomainError, QuotaExceededError, ValidationFailedError
from services.jobs.base import JobContext, JobKind, JobRead
from services.llm.metered import ModelCalls
from services.money import to_micro
from services.runs import ACTIVE, TERMINAL, Run, RunEvent, RunHandle, RunKind, RunRead, RunService, RunStatus
from services.settings import JobSettings

log = logging.getLogger(__name__)


@dataclass
class Queued:
    kind: JobKind[Any]
    params: BaseModel
    principal: Principal
    handle: RunHandle
    hold: Hold


class JobService:
    def __init__(
        self,
        *,
        db: Database,
        runs: RunService,
        artifacts: ArtifactService,
        credits: CreditService,
        calls: ModelCalls,
        settings: JobSettings,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._runs = runs
        self._artifacts = artifacts
        self._credits = credits
        self._calls = calls
        self._settings = settings
        self._clock = clock
        self._kinds: dict[str, JobKind[Any]] = {}
        self._queue: list[Queued] = []
        self._running: dict[str, JobKind[Any]] = {}
        self._stopping = False

    # -- kinds ---------------------------------------------------------------------------------------

    def register(self, kind: JobKind[Any]) -> None:
        """Make a kind of job available (its runs are read and stopped with the kind's scope)."""
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name!r} is registered twice")
        self._runs.register_kind(RunKind(name=kind.name, scope=kind.scope, on_stop=self._cancel_waiting))
        self._kinds[kind.name] = kind

    def kinds(self, family: str | None = None) -> list[JobKind[Any]]:
        return [kind for kind in self._kinds.values() if family is None or kind.family == family]

    def _names(self, family: str | None) -> set[str]:
        return {kind.name for kind in self.kinds(family)}

    # -- lifecycle -----------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Jobs still waiting here end as interrupted; running ones are stopped with the runs (also interrupted)."""
        self._stopping = True
        waiting, self._queue = self._queue, []
        for job in waiting:
            await self._end_with_error(job, RunStatus.INTERRUPTED, "interrupted",
                                       "the server stopped before the job started")  # fmt: skip

    # -- submit, read, cancel, delete ------------------------------------------------------------------

    async def submit(self, principal: Principal, kind_name: str, params: BaseModel | dict[str, Any]) -> JobRead:
        """Queue a job. 422 for an unknown kind or bad parameters, 403 without the kind's scope, 402 when its fee
        cannot be held, 429 past the per-user limit of jobs waiting or running."""
        kind = self._kinds.get(kind_name)
        if kind is None:
            raise ValidationFailedError(f"unknown job kind {kind_name!r}", code="unknown_job_kind")
        require_scope(principal, kind.scope)
        try:
            parsed = kind.params.model_validate(params.model_dump() if isinstance(params, BaseModel) else params)
        except ValidationError as exc:
            raise ValidationFailedError(
                "invalid job parameters", details=exc.errors(include_url=False, include_input=False)
            ) from exc
        user_id = principal.user.id
        async with self._db.transaction(exclusive=f"jobs:{user_id}") as session:
            active = (
                await session.exec(
                    select(sa.func.count()).select_from(Run)
                    .where(Run.user_id == user_id, col(Run.kind).in_(self._names(None)), col(Run.status).in_(ACTIVE))
                )
            ).one()  # fmt: skip
            if active >= self._settings.max_queued_per_user:
                raise QuotaExceededError(f"you have {active} jobs waiting or running, the most allowed",
                                         code="job_quota")  # fmt: skip
            run = self._runs.new_run(user_id=user_id, kind=kind.name, status=RunStatus.QUEUED,
                                     params=parsed.model_dump(mode="json"))  # fmt: skip
            session.add(run)
            await session.flush()
            hold = await self._credits.hold(user_id, at_most=to_micro(Decimal(kind.fee)), cause_type="job",
                                            cause_id=run.id, session=session)  # fmt: skip
        handle = self._runs.open(run)
        handle.progress("queued", message="waiting for a free worker")
        self._queue.append(Queued(kind, parsed, principal, handle, hold))
        self._pump()
        return await self._read(run)

    async def get(self, principal: Principal, job_id: str, *, family: str | None = None) -> JobRead:
        return await self._read(await self._runs.get(principal, job_id, kinds=self._names(family)))

    async def list_jobs(
        self,
        principal: Principal,
        *,
        family: str | None = None,
        kind: str | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[JobRead]:
        """The caller's jobs (of one ``kind`` when given), newest first, of the kinds the caller's scopes allow."""
        names = {k.name for k in self.kinds(family) if grants(principal.scopes, k.scope) and kind in (None, k.name)}
        statement = select(Run).where(Run.user_id == principal.user.id, col(Run.kind).in_(names))
        async with self._db.transaction(readonly=True) as session:
            rows, next_cursor = await keyset_page(session, statement, created_at=Run.created_at, row_id=Run.id,
                                                  limit=limit, cursor=cursor)  # fmt: skip
        made = await self._artifacts.of_runs(principal.user.id, [row.id for row in rows])
        return Page(items=[_job(row, made[row.id]) for row in rows], next_cursor=next_cursor)

    async def follow(
        self, principal: Principal, job_id: str, after: int = 0, *, family: str | None = None
    ) -> AsyncIterator[list[RunEvent]]:
        return await self._runs.follow(principal, job_id, after, kinds=self._names(family))

    async def cancel(self, principal: Principal, job_id: str, *, family: str | None = None) -> JobRead:
        """Cancel a waiting or running job (409 once it has ended). What it made so far is kept."""
        run = await self._runs.get(principal, job_id, kinds=self._names(family))
        if run.status in TERMINAL:
            raise ConflictError(f"the job has already ended ({run.status})", code="job_not_active")
        if not await self._cancel_waiting(job_id):
            await self._runs.request_stop(principal, job_id)
            await self._runs.wait(job_id, timeout_s=5)
        return await self.get(principal, job_id, family=family)

    async def _cancel_waiting(self, job_id: str) -> bool:
        """Cancel a job still waiting in this process's queue; False when it is not waiting here."""
        waiting = next((job for job in self._queue if job.handle.run_id == job_id), None)
        if waiting is None:
            return False
        self._queue.remove(waiting)
        await self._credits.release(waiting.hold)
        waiting.handle.emit("done", {"finish_reason": "cancelled", "elapsed_ms": 0})
        await waiting.handle.finish(RunStatus.CANCELLED)
        await self._ended(waiting, RunStatus.CANCELLED, "cancelled", "cancelled before it started")
        return True

    async def _ended(self, job: Queued, status: RunStatus, code: str | None, message: str | None) -> None:
        if job.kind.on_ended is None:
            return
        try:
            await asyncio.shield(job.kind.on_ended(job.handle.run_id, status.value, code, message))
        except Exception:
            log.exception("the %s job kind's on_ended failed for %s", job.kind.name, job.handle.run_id)

    async def delete(self, principal: Principal, job_id: str, *, family: str | None = None) -> None:
        """Delete a job with its events and artifacts; a job still going is cancelled first."""
        run = await self._runs.get(principal, job_id, kinds=self._names(family))
        if run.status in ACTIVE:
            with contextlib.suppress(ConflictError):  # it ended meanwhile
                await self.cancel(principal, job_id, family=family)
        await self._artifacts.delete_of_run(principal.user.id, job_id)
        async with self._db.transaction() as session:
            found = await session.get(Run, job_id)
            if found is not None:
                await session.delete(found)

    async def _read(self, run: Run) -> JobRead:
        return _job(run, (await self._artifacts.of_runs(run.user_id, [run.id]))[run.id])

    # -- the queue -------------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start waiting jobs, oldest first, as far as the limits allow."""
        if self._stopping:
            return
        for job in list(self._queue):
            running = list(self._running.values())
            if len(running) >= self._settings.max_running:
                return
            if sum(1 for kind in running if kind.name == job.kind.name) >= job.kind.concurrency:
                continue
            if job.kind.heavy and sum(1 for kind in running if kind.heavy) >= self._settings.max_heavy:
                continue
            self._queue.remove(job)
            self._running[job.handle.run_id] = job.kind
            self._runs.launch(job.handle, functools.partial(self._execute, job), cancel_on_stop=True)

    async def _execute(self, job: Queued, handle: RunHandle) -> None:
        kind = job.kind
        started = time.monotonic()
        try:
            await self._runs.mark_started(handle.run_id)
            handle.progress("running")
            context = JobContext(job_id=handle.run_id, principal=job.principal, run=handle,
                                 artifacts=self._artifacts, calls=self._calls)  # fmt: skip
            result = await kind.run(job.params, context)
        except asyncio.CancelledError:
            if self._stopping:
                await self._end_with_error(job, RunStatus.INTERRUPTED, "interrupted", "the server stopped")
            else:
                await self._credits.release(job.hold)
                handle.emit("done", {"finish_reason": "cancelled", "elapsed_ms": _ms(started)})
                await handle.finish(RunStatus.CANCELLED)
                await self._ended(job, RunStatus.CANCELLED, "cancelled", "cancelled")
            return  # the cancellation was ours to handle: the supervised task ends normally
        except DomainError as exc:
            await self._end_with_error(job, RunStatus.FAILED, exc.code, exc.message)
        except Exception as exc:
            log.exception("job %s (%s) failed", handle.run_id, kind.name)
            await self._end_with_error(job, RunStatus.FAILED, "internal", f"the job failed: {type(exc).__name__}")
        else:
            await self._credits.settle(job.hold, job.hold.amount_micro)
            handle.emit("done", {"finish_reason": "stop", "elapsed_ms": _ms(started)})
            await handle.finish(RunStatus.DONE, result=result or {})
        finally:
            self._running.pop(handle.run_id, None)
            self._pump()

    async def _end_with_error(self, job: Queued, status: RunStatus, code: str, message: str) -> None:
        """The fee is given back, the error is the job's last event and its status."""
        await self._credits.release(job.hold)
        job.handle.emit("error", {"code": code, "message": message})
        await job.handle.finish(status, code, error_message=message)
        await self._ended(job, status, code, message)


def _job(run: Run, artifacts: list[ArtifactRead]) -> JobRead:
    base = RunRead.of(run)
    return JobRead(id=run.id, kind=run.kind, status=run.status, params=run.params or {}, progress=base.progress,
                   fraction=base.fraction, result=run.result, error=base.error, artifacts=artifacts,
                   created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at)  # fmt: skip


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
