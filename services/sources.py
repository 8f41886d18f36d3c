"""Passages of a user's documents for work grounded in them (podcasts, decks, prose), without importing RAG.

A capability that owns documents (RAG) registers a reader; one that writes from them asks
:meth:`Sources.passages` with the resource ids a user picked and gets numbered passages to give the model and to
keep as citations. With a ``query`` the reader returns the passages most about it; without, the documents' text in
order, shared fairly between the resources, up to ``max_chars``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from services.auth.schemas import Principal
from services.errors import UpstreamUnavailableError


class SourcePassage(BaseModel):
    """A passage and where it is from: enough to cite it (the resource, its chunk, a page or a heading)."""

    resource_id: str
    chunk_id: str
    title: str
    page: int | None = None
    heading: str | None = None
    text: str

    def citation(self, n: int) -> dict[str, Any]:
        """What a transcript or a slide's notes keep of it (the text stays with the resource)."""
        return {"n": n, "resource_id": self.resource_id, "chunk_id": self.chunk_id, "title": self.title,
                "page": self.page, "heading": self.heading}  # fmt: skip


# (principal, resource_ids, query or None, max_chars) -> passages; 404 for an id not the principal's
SourceReader = Callable[[Principal, list[str], str | None, int], Awaitable[list[SourcePassage]]]


class Sources:
    def __init__(self) -> None:
        self._reader: SourceReader | None = None

    def register(self, reader: SourceReader) -> None:
        if self._reader is not None:
            raise ValueError("a source reader is registered twice")
        self._reader = reader

    @property
    def available(self) -> bool:
        return self._reader is not None

    async def passages(
        self, principal: Principal, resource_ids: list[str], *, query: str | None = None, max_chars: int = 12_000
    ) -> list[SourcePassage]:
        if self._reader is None:
            raise UpstreamUnavailableError("documents are not enabled on this instance (RAG is off)",
                                          code="rag_disabled")  # fmt: skip
        return await self._reader(principal, resource_ids, query, max_chars)
