"""Runs in and out, and the kinds of run a capability registers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.auth.scopes import Scope
from services.runs.models import Run


@dataclass(frozen=True)
class RunKind:
    """A kind of run and the API-key scope that may read and stop it. ``on_interrupted`` tidies what runs of
    this kind left behind when their instance died (chat: answers still marked streaming, busy sessions)."""

    name: str
    scope: Scope
    on_interrupted: Callable[[list[Run]], Awaitable[None]] | None = None
    # Runs that may wait before they start (jobs in a queue): stops a waiting one itself, True when it did.
    on_stop: Callable[[str], Awaitable[bool]] | None = None


class Progress(BaseModel):
    """Where a long run is (events.md's ``progress``): ``done`` and ``total`` in the stage's own units."""

    stage: str = Field(max_length=64)
    done: float | None = None
    total: float | None = None
    message: str | None = Field(default=None, max_length=500)

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


class RunError(BaseModel):
    code: str
    message: str | None = None


class RunRead(BaseModel):
    """Any run: its kind, status, progress, result and error."""

    id: str
    kind: str
    status: str
    subject_id: str | None
    progress: Progress | None
    fraction: float | None = Field(description="progress as 0..1, when the stage counts its work")
    result: dict[str, Any] | None
    error: RunError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_event_id: int

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, run: Run) -> RunRead:
        progress = Progress.model_validate(run.progress) if run.progress else None
        return cls(
            id=run.id, kind=run.kind, status=run.status, subject_id=run.subject_id, progress=progress,
            fraction=1.0 if run.status == "done" else progress.fraction if progress else None, result=run.result,
            error=RunError(code=run.error_code, message=run.error_message) if run.error_code else None,
            created_at=run.created_at, started_at=run.started_at, finished_at=run.finished_at,
            last_event_id=run.last_event_id,
        )  # fmt: skip
