"""Generation tables: decks and their slides (each edit a version), slide thumbnails, the users' .pptx templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from services.db.base import SQLModel as _Base  # noqa: F401  (naming convention first)
from services.db.types import JSONType, UTCDateTime


class Deck(SQLModel, table=True):
    """What a deck job made, kept editable: the slides live in ``deck_slides``; the .pptx artifact is rendered
    again after every change (same artifact id, a new version). Deleted with its job."""

    __tablename__ = "decks"

    id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    )  # the job's id
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    title: str = Field(max_length=200)
    theme: str = Field(max_length=32)
    template_id: str | None = Field(default=None, max_length=32)
    model: str = Field(max_length=128)
    topic: str = Field(default="", max_length=2000)
    sources: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    artifact_id: str = Field(max_length=32)
    version: int = Field(default=1)  # grows with every change of any slide or of the order
    rendered_version: int = Field(default=1)  # the version the .pptx artifact shows
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DeckSlide(SQLModel, table=True):
    """A slide: a stable id, its place in the deck, and its current content (``version`` of ``slide_versions``)."""

    __tablename__ = "deck_slides"
    __table_args__ = (sa.Index("ix_deck_slides_deck_position", "deck_id", "position"),)

    id: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    deck_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("decks.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: str = Field(max_length=32)
    position: int
    version: int = Field(default=1)
    content: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SlideVersion(SQLModel, table=True):
    """Every content a slide has had (the current one too), so an edit can be undone by restoring a version."""

    __tablename__ = "slide_versions"

    slide_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("deck_slides.id", ondelete="CASCADE"), primary_key=True)
    )
    version: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    content: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType, nullable=False)
    cause: str = Field(max_length=32)  # generated | added | edited | regenerated | restored
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SlideThumbnail(SQLModel, table=True):
    """A slide's picture for one of its versions (made by LibreOffice; a version never changes, so neither does
    its thumbnail)."""

    __tablename__ = "slide_thumbnails"

    slide_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("deck_slides.id", ondelete="CASCADE"), primary_key=True)
    )
    version: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    png: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DeckTemplate(SQLModel, table=True):
    """A user's uploaded .pptx whose masters and layouts a deck can be rendered with (the file is an artifact)."""

    __tablename__ = "deck_templates"

    id: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    user_id: str = Field(
        sa_column=sa.Column(sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    name: str = Field(max_length=200)
    artifact_id: str = Field(max_length=32)
    layouts: list[str] = Field(default_factory=list, sa_type=JSONType, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
