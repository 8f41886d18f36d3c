"""The ``rag_search`` tool: a turn's way into the user's resources, each passage it finds numbered for citing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.rag.schemas import ResourceId, SearchHit, SearchRequest
from services.rag.service import RagService
from services.tools import Citation, Tool, ToolContext, ToolGroup

RAG = ToolGroup("rag", Scope.RAG, "search the user's documents")
SEARCH_TOOL = "rag_search"
PASSAGE_CHARS = 1500  # of each passage in what the model reads


class RagSearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=500, description="what to look for, in the user's words")
    resource_ids: list[ResourceId] | None = Field(default=None, max_length=50,
                                                  description="only these resources (default: all)")  # fmt: skip
    k: int = Field(default=4, ge=1, le=10, description="how many passages")


def citation_of(hit: SearchHit) -> Citation:
    position = hit.position
    return Citation(
        key=hit.chunk_id,
        data={"resource_id": hit.resource_id, "chunk_id": hit.chunk_id, "title": hit.title,
              "position": {"page": position.page, "heading": position.heading},
              "snippet": hit.snippet, "score": hit.score},
        text=hit.text,
    )  # fmt: skip


def _where(passage: dict[str, Any]) -> str:
    where = passage["title"]
    if passage.get("page"):
        where += f", page {passage['page']}"
    elif passage.get("heading"):
        where += f", {passage['heading']}"
    return where


def describe_passages(_arguments: dict[str, Any], output: Any) -> str:
    """The passages as the local model reads them: numbered like the citations, each with where it is from."""
    passages = output.get("passages") or []
    if not passages:
        return "The search of the user's documents found nothing relevant."
    lines = [f"[{p['n']}] ({_where(p)}): {p['text']}" for p in passages]
    return ("Context from the user's documents:\n" + "\n".join(lines)
            + "\n\nAnswer the question from the context and cite the passage you use as [n].")


class RagTools:
    def __init__(self, rag: RagService) -> None:
        self._rag = rag
        self.search_tool = Tool(
            name=SEARCH_TOOL,
            description="Search the user's uploaded documents for passages about a question. Use it when the "
            "user asks about their documents, files or resources. Cite the passages by their numbers, like [1].",
            args=RagSearchArgs, group=RAG, handler=self.search, timeout_s=30, describe=describe_passages,
            reads_as_context=True,
        )  # fmt: skip

    def groups(self) -> list[ToolGroup]:
        return [RAG]

    async def tools_for(self, principal: Principal) -> list[Tool]:
        """Offered only to a user who has something to search: to anyone else it is one more tool for a small model
        to call by mistake."""
        return [self.search_tool] if await self._rag.has_ready(principal.user.id) else []

    async def search(self, args: RagSearchArgs, context: ToolContext) -> dict[str, Any]:
        found = await self._rag.search(context.principal, SearchRequest(query=args.query, k=args.k,
                                                                        resource_ids=args.resource_ids))  # fmt: skip
        passages = []
        for hit in found.hits:
            n = context.cite(citation_of(hit))
            text = hit.text if len(hit.text) <= PASSAGE_CHARS else hit.text[:PASSAGE_CHARS] + "…"
            passages.append({"n": n, "resource_id": hit.resource_id, "chunk_id": hit.chunk_id, "title": hit.title,
                             "page": hit.position.page, "heading": hit.position.heading, "text": text})  # fmt: skip
        return {"passages": passages}
