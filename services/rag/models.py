"""RAG tables: a user's resources, their extracted text, chunks and vectors, and the per-user index version.

The chunks' words are indexed in the shared full-text table (scope ``rag``, owner the user, group the resource);
their vectors are rows here, one per (chunk, embedding model), so changing the model re-embeds beside the old.
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


def _resource_column(*, primary_key: bool = False) -> Any:
    return sa.Column(sa.String(32), sa.ForeignKey("rag_resources.id", ondelete="CASCADE"), nullable=False,
                     primary_key=primary_key, index=not primary_key)  # fmt: skip


class RagResource(SQLModel, table=True):
    """An uploaded file, a fetched URL or pasted text, and where its ingestion stands."""

    __tablename__ = "rag_resources"

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(sa_column=_user_column())
    title: str = Field(max_length=200)
    source: str = Field(max_length=8)  # file | url | text
    filename: str | None = Field(default=None, max_length=255)
    url: str | None = Field(default=None, max_length=2048)
    media_type: str | None = Field(default=None, max_length=128)
    size: int = Field(default=0, sa_type=sa.BigInteger)
    status: str = Field(default="processing", max_length=16)  # processing | ready | failed
    error_code: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=1000)
    job_id: str | None = Field(default=None, max_length=32, index=True)
    # The original bytes (a file, a fetched page, the pasted text), kept as an upload artifact.
    artifact_id: str | None = Field(default=None, max_length=32)
    pages: int | None = Field(default=None)
    chunk_count: int = Field(default=0)
    embedding_model: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class RagDocument(SQLModel, table=True):
    """The extracted text and its sections, to open a citation at its page or section."""

    __tablename__ = "rag_documents"

    resource_id: str = Field(sa_column=_resource_column(primary_key=True))
    text: str = Field(sa_type=sa.Text)
    # [[kind, start, end, page, heading, level], ...] as in services.rag.documents.Section
    sections: list[Any] = Field(default_factory=list, sa_type=JSONType, nullable=False)


class RagChunk(SQLModel, table=True):
    """One retrievable passage: ``text`` is ``prefix + document.text[start:end]`` (see services.rag.chunking)."""

    __tablename__ = "rag_chunks"

    id: str = Field(primary_key=True, max_length=32)
    resource_id: str = Field(sa_column=_resource_column())
    user_id: str = Field(max_length=32, index=True)
    ordinal: int
    text: str = Field(sa_type=sa.Text)
    start: int
    end: int
    prefix_chars: int = Field(default=0)
    page: int | None = Field(default=None)
    heading: str | None = Field(default=None, max_length=500)


class RagVector(SQLModel, table=True):
    """A chunk's embedding by one model: little-endian float32, normalised."""

    __tablename__ = "rag_vectors"
    __table_args__ = (sa.Index("ix_rag_vectors_user_model", "user_id", "model"),)

    chunk_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("rag_chunks.id", ondelete="CASCADE"), primary_key=True)
    )
    model: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(max_length=32)
    vector: bytes = Field(sa_type=sa.LargeBinary)


class RagIndexVersion(SQLModel, table=True):
    """Moves on every change of a user's chunks: a process's cached vectors older than it are rebuilt."""

    __tablename__ = "rag_index_versions"

    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    version: int = Field(default=0, sa_type=sa.BigInteger)
