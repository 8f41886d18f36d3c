"""Sandboxes of users: limits, lifetime, where they run, and the credit holds paying for their minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import JSONType, UTCDateTime


class Sandbox(SQLModel, table=True):
    __tablename__ = "sandboxes"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    backend: str = Field(max_length=16)
    ref: str | None = Field(default=None, max_length=128)
    status: str = Field(max_length=16, index=True)  # starting | running | destroyed | failed
    template: str = Field(max_length=32)
    cpu: float
    memory_mb: int
    pids: int
    disk_mb: int
    network: bool = False
    session_id: str | None = Field(default=None, max_length=32)
    timeout_s: int
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    destroyed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    destroy_reason: str | None = Field(default=None, max_length=64)
    hold_ids: list[Any] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    # The instance that runs it: only once that instance's lease is gone may another destroy it.
    owner_instance: str | None = Field(default=None, max_length=32, index=True)
