"""TTS tables: each user's voice preference, and the podcasts (their transcript, chapters and audio artifacts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import JSONType, UTCDateTime


class VoicePreference(SQLModel, table=True):
    """The voice a user hears when they name none (read aloud, synthesis without ``voice``), and its speed."""

    __tablename__ = "tts_preferences"

    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    voice: str | None = Field(default=None, max_length=128)
    rate: float = Field(default=1.0)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Podcast(SQLModel, table=True):
    """What a podcast job made: the script as spoken (lines with speaker, voice, text, times and citations), its
    chapters, and its two artifacts: the MP3 people play and a lossless master that an edited line is spliced into
    (so re-synthesising one line never re-encodes the others twice). Deleted with its job."""

    __tablename__ = "tts_podcasts"

    id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    )  # the job's id
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    title: str = Field(max_length=200)
    speakers: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    chapters: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    sources: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    sample_rate: int
    duration_s: float
    audio_artifact_id: str = Field(max_length=32)
    master_artifact_id: str = Field(max_length=32)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
