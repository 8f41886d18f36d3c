"""Text to speech as a capability: the engines in the configured order behind the TTS service."""

from __future__ import annotations

import logging
from typing import Any

from services.capabilities import Capability, CapabilityInfo, Core, DependencyHealth
from services.jobs import JobKind
from services.tools import ToolProvider
from services.tts.engines import EdgeTtsEngine, EspeakEngine, FliteEngine, TtsEngine
from services.tts.podcast import PodcastService
from services.tts.service import TtsService
from services.tts.tools import PodcastTools

log = logging.getLogger(__name__)


def make_engines(core: Core) -> list[TtsEngine]:
    settings = core.settings.tts
    made: dict[str, TtsEngine] = {
        "edge": EdgeTtsEngine(connect_timeout_s=settings.edge_connect_timeout_s, deadline_s=settings.edge_deadline_s,
                              proxy=settings.edge_proxy),
        "flite": FliteEngine(),
        "espeak": EspeakEngine(),
    }
    return [made[name] for name in settings.engines]


class TtsCapability(Capability):
    name = "tts"

    def __init__(self, core: Core) -> None:
        self.service: TtsService | None = None
        if core.settings.tts.enabled:
            self.service = TtsService(
                engines=make_engines(core),
                credits=core.credits,
                settings=core.settings.tts,
                prices=core.settings.credits,
                db=core.db,
            )
        self.podcasts: PodcastService | None = None
        if self.service is not None:
            self.podcasts = PodcastService(db=core.db, tts=self.service, jobs=core.jobs, artifacts=core.artifacts,
                                           credits=core.credits, models=core.models, sources=core.sources)  # fmt: skip
        self._described = "not checked yet"

    def services(self) -> list[object]:
        return [self.service, self.podcasts] if self.service is not None else []

    def tool_providers(self) -> list[ToolProvider]:
        return [PodcastTools(self.podcasts)] if self.podcasts is not None else []

    def job_kinds(self) -> list[JobKind[Any]]:
        return [self.podcasts.job_kind()] if self.podcasts is not None else []

    async def start(self) -> None:
        if self.service is not None:
            try:
                self._described = await self.service.describe()
            except Exception:  # speech is not worth refusing to start over: health says what is wrong
                log.exception("checking the TTS engines failed")
                self._described = "engines: not checked (see the log)"

    def info(self) -> CapabilityInfo:
        if self.service is None:
            return CapabilityInfo(enabled=False, detail="disabled")
        return CapabilityInfo(enabled=True, detail=self._described)

    async def health(self) -> dict[str, DependencyHealth]:
        if self.service is None:
            return {"tts": DependencyHealth(status="not_configured", detail="TTS is disabled")}
        described = await self.service.describe()
        if described.endswith("none available"):
            return {"tts": DependencyHealth(status="down", detail=described)}
        return {"tts": DependencyHealth(status="ok", detail=described)}
