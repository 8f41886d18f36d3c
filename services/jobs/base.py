"""What a job kind declares, and what a running job gets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from services.artifacts import ArtifactRead, ArtifactService
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.llm.metered import ModelCalls, Payer
from services.runs import Progress, RunError, RunHandle

P = TypeVar("P", bound=BaseModel)


@dataclass
class JobContext:
    """What a running job holds: who asked, its run (progress, events, the stop signal), artifact storage
    and metered model calls."""

    job_id: str
    principal: Principal
    run: RunHandle
    artifacts: ArtifactService
    calls: ModelCalls

    @property
    def user_id(self) -> str:
        return self.principal.user.id

    @property
    def payer(self) -> Payer:
        """Pass to ``calls.stream``/``complete_json``: the user pays, usage goes to this job's events."""
        return Payer(user_id=self.user_id, run=self.run)

    def progress(
        self, stage: str, done: float | None = None, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress (throttled to ~10 events a second; the last report is always sent)."""
        self.run.progress(stage, done, total, message)

    async def artifact(
        self, *, kind: str, filename: str, media_type: str, data: bytes | Path, title: str | None = None
    ) -> ArtifactRead:
        """Store a file this job made and tell the job's readers (an ``artifact`` event)."""
        saved = await self.artifacts.save(user_id=self.user_id, kind=kind, filename=filename, media_type=media_type,
                                          data=data, title=title, run_id=self.job_id)  # fmt: skip
        self.run.emit("artifact", {"kind": kind, "id": saved.id, "url": saved.url, "title": saved.title})
        return saved


JobRunner = Callable[[P, JobContext], Awaitable[dict[str, Any] | None]]
JobEnded = Callable[[str, str, str | None, str | None], Awaitable[None]]


@dataclass(frozen=True)
class JobKind(Generic[P]):
    """A kind of background job, registered by a capability.

    ``run(params, context)`` does the work and returns the job's result (JSON); it is cancelled where it waits
    when the job is cancelled. ``family`` says where the job is listed (``generation`` jobs under
    ``/generation/jobs``); ``heavy`` jobs share a smaller concurrency limit; ``fee`` is held when the job is
    submitted and charged when it is done.
    """

    name: str
    scope: Scope
    params: type[P]
    run: JobRunner[P]
    family: str = "generation"
    heavy: bool = True
    concurrency: int = 1
    fee: Decimal = field(default=Decimal(0))
    # Told once a job ended otherwise than done (``(job_id, status, code, message)``: cancelled while it waited or
    # ran, failed, interrupted by a shutdown), so the capability can mark what the job was for.
    on_ended: JobEnded | None = None


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: str
    status: str  # queued | running | done | failed | cancelled | interrupted
    params: dict[str, Any]
    progress: Progress | None
    fraction: float | None
    result: dict[str, Any] | None
    error: RunError | None
    artifacts: list[ArtifactRead]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
