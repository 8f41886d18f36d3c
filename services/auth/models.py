"""Tables of users, their browser/API sessions, one-time login tickets and API keys."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import JSONType, UTCDateTime


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=32)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True}, nullable=False)
    password_hash: str = Field(max_length=255)
    role: str = Field(default=Role.USER, max_length=16)
    is_disabled: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class AuthSession(SQLModel, table=True):
    """A signed-in browser or a login's access token. Only the token's keyed digest is stored."""

    __tablename__ = "auth_sessions"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    token_digest: str = Field(max_length=64, sa_column_kwargs={"unique": True}, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    user_agent: str | None = Field(default=None, max_length=256)


class LoginTicket(SQLModel, table=True):
    """A single-use, short-lived ticket that turns a UI sign-in into a cookie over a plain HTTP request."""

    __tablename__ = "auth_login_tickets"

    digest: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class ApiKey(SQLModel, table=True):
    """``agent_api_keys`` from the seed; ``api_key`` holds a keyed SHA-256 digest, never the token."""

    __tablename__ = "agent_api_keys"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    api_key: str = Field(max_length=256, sa_column_kwargs={"unique": True}, nullable=False)
    prefix: str = Field(max_length=16)
    name: str = Field(max_length=128)
    is_active: bool = Field(default=True)
    scopes: list[str] = Field(default_factory=lambda: ["*"], sa_type=JSONType, nullable=False)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sandbox_id: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
