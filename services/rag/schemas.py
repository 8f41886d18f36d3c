"""RAG API in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, model_validator

SearchMode = Literal["hybrid", "keyword", "vector"]
ResourceStatus = Literal["processing", "ready", "failed"]
ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class ResourceCreate(BaseModel):
    """A URL to fetch or text to index (a file is uploaded as multipart instead)."""

    model_config = ConfigDict(extra="forbid")
    url: HttpUrl | None = Field(default=None, description="fetched by the server: http(s) only, public addresses")
    text: str | None = Field(default=None, min_length=1, max_length=2_000_000)
    title: Title | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ResourceCreate:
        if (self.url is None) == (self.text is None):
            raise ValueError("give exactly one of url or text")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self


class ResourceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    title: str
    source: Literal["file", "url", "text"]
    filename: str | None
    url: str | None
    media_type: str | None
    size: int
    status: ResourceStatus
    error_code: str | None
    reason: str | None = Field(description="why ingestion failed (status failed)")
    job_id: str | None = Field(description="the ingestion job: its progress at /runs/{job_id}/events")
    artifact_id: str | None = Field(description="the original, downloadable at /artifacts/{artifact_id}")
    pages: int | None
    chunk_count: int
    embedding_model: str | None
    created_at: datetime
    updated_at: datetime


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    resource_ids: list[ResourceId] | None = Field(default=None, max_length=100)
    k: int = Field(default=5, ge=1, le=50)
    mode: SearchMode = "hybrid"

    @model_validator(mode="after")
    def _has_words(self) -> SearchRequest:
        if not self.query.strip():
            raise ValueError("query is empty")
        return self


class Position(BaseModel):
    page: int | None = Field(description="1-based page of a PDF")
    heading: str | None = Field(description="the section heading above the passage")
    start: int = Field(description="character offset of the passage in the resource's extracted text")
    end: int


class SearchHit(BaseModel):
    chunk_id: str
    resource_id: str
    title: str
    position: Position
    snippet: str = Field(description="a short extract around the best match, plain text")
    marks: list[tuple[int, int]] = Field(description="[start, end) of each matching word in the snippet")
    text: str = Field(description="the whole passage")
    score: float = Field(description="higher is better: fused rank (hybrid), bm25 (keyword) or cosine (vector)")


class SearchResults(BaseModel):
    query: str
    mode: SearchMode
    hits: list[SearchHit]
    embedding_model: str | None = None


class Passage(BaseModel):
    """What a citation opens: the page (PDF) or section holding the chunk, with the chunk's span marked."""

    resource_id: str
    chunk_id: str
    title: str
    page: int | None
    pages: int | None
    heading: str | None
    text: str = Field(description="the page's or section's text")
    highlight: tuple[int, int] = Field(description="[start, end) of the chunk within text")
