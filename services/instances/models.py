"""One row per running app process: its lease, renewed by a heartbeat."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import UTCDateTime


class Instance(SQLModel, table=True):
    __tablename__ = "instances"

    id: str = Field(primary_key=True, max_length=32)
    # Where it runs: a process on this machine that no longer exists is dead before its lease runs out.
    machine: str = Field(max_length=128)
    pid: int
    pid_started: int = Field(default=0)  # the process's start time in clock ticks since boot (pids are reused)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    heartbeat_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
