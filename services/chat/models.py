"""Chat sessions, messages (content as a list of parts, branches through parent_id) and per-session metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import JSONType, UTCDateTime


class ChatSession(SQLModel, table=True):
    __tablename__ = "chat_sessions"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    title: str = Field(max_length=200)
    model: str = Field(max_length=128)
    system_prompt: str | None = Field(default=None, sa_type=sa.Text)
    active_run_id: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class ChatMessage(SQLModel, table=True):
    """A user or assistant message. An assistant message holds the whole turn: text, tool calls and results."""

    __tablename__ = "chat_messages"

    id: str = Field(primary_key=True, max_length=32)
    session_id: str = Field(
        sa_column=sa.Column(
            sa.String(32), sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    user_id: str = Field(max_length=32, index=True)
    parent_id: str | None = Field(default=None, max_length=32)
    role: str = Field(max_length=16)
    content: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    status: str = Field(default="complete", max_length=16)
    model: str | None = Field(default=None, max_length=128)
    run_id: str | None = Field(default=None, max_length=32)
    prompt_tokens: int = Field(default=0)
    completion_tokens: int = Field(default=0)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SessionMetrics(SQLModel, table=True):
    """``agent_session_metrics``: what each session used. Kept when the session is deleted."""

    __tablename__ = "agent_session_metrics"

    session_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=32, index=True)
    # The seed's ``credits``, held exactly as integer micro-credits.
    credits_micro: int = Field(default=0, sa_type=sa.BigInteger)
    total_prompt_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    total_completion_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
