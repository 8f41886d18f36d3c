"""RAG as a capability: the resource service on the configured embedder, its ingestion jobs and its search tool."""

from __future__ import annotations

from typing import Any

from services.capabilities import Capability, CapabilityInfo, Core, DependencyHealth
from services.instances import LiveInstances
from services.jobs import JobKind
from services.outbound import UrlFetcher
from services.rag.embeddings import Embedder, LocalE5Embedder, OpenAIEmbedder
from services.rag.models import RagResource
from services.rag.service import RagService
from services.rag.tools import RagTools
from services.references import row_describer, row_owner
from services.tools import ToolProvider


def make_embedders(core: Core) -> tuple[Embedder, Embedder | None]:
    """The configured embedder, and the bundled one to fall back on (None when the bundled one is the first)."""
    settings = core.settings.rag.embedding
    local = LocalE5Embedder(batch_size=settings.batch_size)
    if not settings.base_url:
        return local, None
    remote = OpenAIEmbedder(
        base_url=settings.base_url, model=settings.model, timeout_s=30,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        send_input_type=settings.send_input_type, batch_size=settings.batch_size,
    )  # fmt: skip
    return remote, local


class RagCapability(Capability):
    name = "rag"

    def __init__(self, core: Core) -> None:
        settings = core.settings.rag
        self.service: RagService | None = None
        if not settings.enabled:
            return
        embedder, fallback = make_embedders(core)
        fetcher = UrlFetcher(allow_private=settings.allow_private_urls, timeout_s=settings.url_timeout_s,
                             user_agent=f"agent-ui/{core.version}")  # fmt: skip
        self.service = RagService(db=core.db, jobs=core.jobs, artifacts=core.artifacts, credits=core.credits,
                                  embedder=embedder, fallback=fallback, fetcher=fetcher, settings=settings,
                                  prices=core.settings.credits)  # fmt: skip
        # Resources by their title where ids are shown (the credits statement: "Resource: Annual report").
        titles = row_describer(core.db, RagResource, lambda resource: f"Resource: {resource.title}")
        core.references.register("rsc", row_owner(core.db, RagResource), describe=titles)
        core.sources.register(self.service.passages_for)

    def services(self) -> list[object]:
        return [self.service] if self.service is not None else []

    async def start(self) -> None:
        if self.service is not None:
            await self.service.reembed_stale()

    def info(self) -> CapabilityInfo:
        if self.service is None:
            return CapabilityInfo(enabled=False, detail="disabled")
        return CapabilityInfo(enabled=True, detail=self.service.describe(),
                              settings={"embedding_model": self.service.embedding_model})  # fmt: skip

    async def health(self) -> dict[str, DependencyHealth]:
        if self.service is None:
            return {"embeddings": DependencyHealth(status="not_configured", detail="RAG is disabled")}
        return {"embeddings": DependencyHealth(status="ok", detail=self.service.embedding_model)}

    def job_kinds(self) -> list[JobKind[Any]]:
        return [self.service.job_kind()] if self.service is not None else []

    def tool_providers(self) -> list[ToolProvider]:
        return [RagTools(self.service)] if self.service is not None else []

    async def recover(self, live: LiveInstances) -> None:
        if self.service is not None:
            await self.service.recover(live)
