"""MCP tables: the servers users register (and admins share), and each user's settings for the agent CLIs.

Secrets never sit in a column in the clear: a server's ``env`` and ``headers`` and a setting's ``auth_json`` are
sealed by the vault (``services.vault``); what the API shows of them is redacted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import JSONType, UTCDateTime


def _user_column() -> Any:
    return sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)


class McpServer(SQLModel, table=True):
    """A server the agent can use: how to reach it and what the last check found."""

    __tablename__ = "agent_mcp_servers"
    __table_args__ = (sa.UniqueConstraint("user_id", "name"),)

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(sa_column=_user_column())  # who registered it
    name: str = Field(max_length=64)
    transport: str = Field(max_length=16)  # stdio | sse | streamable_http
    command: str | None = Field(default=None, max_length=1024)
    args: list[str] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    env: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # sealed {name: value}
    url: str | None = Field(default=None, max_length=2048)
    # A user's stdio server runs in one of their sandboxes (an admin's may run on the host: None).
    sandbox_id: str | None = Field(default=None, max_length=32)
    headers: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # sealed {name: value}
    shared: bool = Field(default=False)  # an admin's server every user may use
    # Its URL may lead to a private address: registered by an admin (users' URLs are checked at every connect).
    allow_private: bool = Field(default=False)
    enabled: bool = Field(default=True)
    # What the last connection found: its tools (name, description, input schema) and how it went.
    tools: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    last_checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status: str | None = Field(default=None, max_length=16)  # ok | error
    last_error: str | None = Field(default=None, max_length=1000)
    last_latency_ms: float | None = Field(default=None)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class McpSetting(SQLModel, table=True):
    """``agent_mcp_settings`` from the seed: one row per user and tool (``codex``, ``claude_code``,
    ``custom:<name>``), written into that user's new sandboxes while active."""

    __tablename__ = "agent_mcp_settings"
    __table_args__ = (sa.UniqueConstraint("user_id", "tool_type"),)

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(sa_column=_user_column())
    tool_type: str = Field(max_length=80)
    mcp_config: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType, nullable=False)
    auth_json: dict[str, Any] | None = Field(default=None, sa_type=JSONType)  # sealed
    is_active: bool = Field(default=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
