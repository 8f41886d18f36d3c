"""Liveness and the state of each dependency. Never starts anything (the local model starts on first use)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from services.capabilities import Capability, DependencyHealth, DependencyStatus
from services.db.database import Database
from services.llm import ModelRegistry

# Dependencies of capabilities not built yet: reported so clients see the whole shape.
PLANNED = {"tts": "speech arrives in a later release"}


class HealthReport(BaseModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    uptime_s: float
    dependencies: dict[str, DependencyHealth]


class HealthService:
    def __init__(
        self,
        *,
        db: Database,
        models: ModelRegistry,
        capabilities: Sequence[Capability],
        version: str,
        started_at: float | None = None,
    ) -> None:
        self._db = db
        self._models = models
        self._capabilities = capabilities
        self._version = version
        self._started_at = started_at or time.monotonic()

    def _llm(self) -> DependencyHealth:
        """Configured providers are not probed (that would cost a call); the local model reports its process."""
        runner = self._models.local_runner()
        providers = sorted({m.provider for m in self._models.models() if not m.local})
        if runner is None:
            if not providers:
                return DependencyHealth(status="not_configured", detail="no model configured")
            return DependencyHealth(status="ok", detail="providers: " + ", ".join(providers))
        state, error = runner.state()
        detail = f"local model {runner.spec.id}: " + {
            "not_started": "starts on first use", "starting": "loading", "ok": "running", "down": error or "down",
        }[state]  # fmt: skip
        status: DependencyStatus = {"not_started": "idle", "starting": "starting", "ok": "ok", "down": "down"}[state]  # type: ignore[assignment]
        if providers:
            detail += "; providers: " + ", ".join(providers)
        return DependencyHealth(status=status, detail=detail)

    async def report(self) -> HealthReport:
        db = await self._db.health()
        dependencies = {
            "database": DependencyHealth(
                status="ok" if db.ok else "down",
                detail=db.backend if db.ok else f"{db.backend}: {db.error}",
                latency_ms=db.latency_ms,
            ),
            "llm": self._llm(),
        }
        for capability in self._capabilities:
            dependencies |= await capability.health()
        for name, detail in PLANNED.items():
            dependencies.setdefault(name, DependencyHealth(status="not_configured", detail=detail))
        return HealthReport(
            status="ok" if db.ok else "down",
            version=self._version,
            uptime_s=round(time.monotonic() - self._started_at, 1),
            dependencies=dependencies,
        )
