"""Files of a user's jobs and uploads: the row says who owns it and what it is; the bytes are in the store."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import UTCDateTime


class Artifact(SQLModel, table=True):
    __tablename__ = "artifacts"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    # The job that made it (deleted with it); none for an upload, whose capability's scope guards it instead.
    run_id: str | None = Field(
        default=None,
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=True, index=True),
    )
    scope: str = Field(max_length=32)
    kind: str = Field(max_length=32)  # audio | pptx | prose | file | upload ...
    title: str = Field(max_length=200)
    filename: str = Field(max_length=255)
    media_type: str = Field(max_length=128)
    size: int = Field(sa_type=sa.BigInteger)
    sha256: str = Field(max_length=64)
    version: int = Field(default=1)
    storage_key: str = Field(max_length=255)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
