"""Decks and prose as a capability: the deck jobs and their thumbnails, prose runs, and the chat's tools."""

from __future__ import annotations

from typing import Any

from services.capabilities import Capability, CapabilityInfo, Core, DependencyHealth
from services.generation import thumbnails
from services.generation.decks import REGENERATE_KIND, DeckService
from services.generation.prose import ProseService
from services.generation.tools import GenerationTools
from services.jobs import JobKind
from services.runs import RunKind
from services.tools import ToolProvider


class GenerationCapability(Capability):
    name = "generation"

    def __init__(self, core: Core) -> None:
        self.decks: DeckService | None = None
        self.prose: ProseService | None = None
        settings = core.settings.generation
        if not settings.enabled:
            return
        self.decks = DeckService(db=core.db, jobs=core.jobs, runs=core.runs, artifacts=core.artifacts,
                                 calls=core.calls, models=core.models, sources=core.sources,
                                 thumbnail_width=settings.thumbnail_width,
                                 thumbnail_timeout_s=settings.thumbnail_timeout_s)  # fmt: skip
        self.prose = ProseService(db=core.db, runs=core.runs, artifacts=core.artifacts, calls=core.calls,
                                  models=core.models, sources=core.sources)  # fmt: skip

    def services(self) -> list[object]:
        return [self.decks, self.prose] if self.decks is not None else []

    def job_kinds(self) -> list[JobKind[Any]]:
        return self.decks.job_kinds() if self.decks is not None else []

    def run_kinds(self) -> list[RunKind]:
        if self.decks is None or self.prose is None:
            return []
        return [self.prose.run_kind(), self.decks.regenerate_kind()]

    def tool_providers(self) -> list[ToolProvider]:
        if self.decks is None or self.prose is None:
            return []
        return [GenerationTools(self.decks, self.prose)]

    def info(self) -> CapabilityInfo:
        if self.decks is None:
            return CapabilityInfo(enabled=False, detail="disabled")
        reason = thumbnails.available()
        return CapabilityInfo(enabled=True, detail="decks and prose; thumbnails: " + (reason or "LibreOffice"),
                              settings={"themes": ["light", "dark", "ocean", "sunset"],
                                        "thumbnails": reason is None})  # fmt: skip

    async def health(self) -> dict[str, DependencyHealth]:
        if self.decks is None:
            return {"thumbnails": DependencyHealth(status="not_configured", detail="generation is disabled")}
        reason = thumbnails.available()
        if reason is not None:
            return {"thumbnails": DependencyHealth(status="down", detail=reason)}
        return {"thumbnails": DependencyHealth(status="ok", detail="LibreOffice")}


__all__ = ["REGENERATE_KIND", "GenerationCapability"]
