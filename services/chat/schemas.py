"""Chat API in and out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MessageText = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
GroupName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class ChatStreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str | None = Field(default=None, max_length=64)
    message: MessageText
    model: str | None = Field(default=None, max_length=128)
    system_prompt: str | None = Field(default=None, max_length=20_000)
    parent_message_id: str | None = Field(default=None, max_length=64)
    tools: list[GroupName] | None = Field(
        default=None,
        max_length=32,
        description="tool groups to offer (builtin, sandbox, ...; see /config); default: every group your key may use",
    )
    rag_resource_ids: list[ResourceId] | None = Field(
        default=None,
        max_length=50,
        description="ground the turn in these resources: it starts by searching them, and the answer cites them",
    )
    sandbox_id: str | None = Field(default=None, max_length=64)
    mcp_server_ids: list[Annotated[str, StringConstraints(max_length=64)]] | None = Field(
        default=None,
        max_length=100,
        description="offer the tools of these MCP servers only (default: every enabled one)",
    )
    max_tool_rounds: int | None = Field(default=None, ge=0, le=20)


class RunStarted(BaseModel):
    run_id: str
    session_id: str
    message_id: str
    user_message_id: str
    model: str


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    parent_id: str | None
    role: str
    content: list[dict[str, Any]]
    status: str
    model: str | None
    run_id: str | None
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    title: str
    model: str
    system_prompt: str | None
    active_run_id: str | None
    created_at: datetime
    updated_at: datetime


class SessionDetail(SessionRead):
    messages: list[MessageRead]


class SessionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str | None, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = None
    model: str | None = Field(default=None, max_length=128)
    system_prompt: str | None = Field(default=None, max_length=20_000)


class SessionUsage(BaseModel):
    session_id: str
    credits: Decimal
    total_prompt_tokens: int
    total_completion_tokens: int


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    session_id: str | None
    status: str
    created_at: datetime
    finished_at: datetime | None
    last_event_id: int
