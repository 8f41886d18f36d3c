"""Runs of every kind (chat turns, jobs) and their events, persisted in batches."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import JSONType, UTCDateTime


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


ACTIVE = {RunStatus.QUEUED, RunStatus.RUNNING}
TERMINAL = {RunStatus.DONE, RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.INTERRUPTED}


class Run(SQLModel, table=True):
    __tablename__ = "runs"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: str = Field(max_length=32, index=True)
    # What the run belongs to, by kind: a chat turn's session; none for a job (the job is the run).
    subject_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default=RunStatus.RUNNING, max_length=16, index=True)
    params: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    progress: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    # The instance (process) running it: only once that instance's lease is gone may another recover it.
    owner_instance: str | None = Field(default=None, max_length=32, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_event_id: int = Field(default=0)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=500)


class RunEventBatch(SQLModel, table=True):
    """Consecutive events of one run, flushed together: ``events`` is ``[[id, type, data], ...]``."""

    __tablename__ = "run_event_batches"

    run_id: str = Field(
        sa_column=sa.Column(
            sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    first_id: int = Field(primary_key=True)
    last_id: int
    events: list[Any] = Field(sa_type=JSONType, nullable=False)
