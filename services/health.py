"""Liveness and the state of each dependency. Never starts anything (the local model starts on first use)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic import BaseModel

from services.db.database import Database
from services.llm import ModelRegistry
from services.sandbox import SandboxService

DependencyStatus = Literal["ok", "down", "not_configured", "starting", "idle"]


class DependencyHealth(BaseModel):
    status: DependencyStatus
    detail: str | None = None
    latency_ms: float | None = None


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
        sandboxes: SandboxService | None,
        version: str,
        started_at: float | None = None,
    ) -> None:
        self._db = db
        self._models = models
        self._sandboxes = sandboxes
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
        detail = (
            f"local model {runner.spec.id}: "
            + {
                "not_started": "starts on first use",
                "starting": "loading",
                "ok": "running",
                "down": error or "down",
            }[state]
        )
        status: DependencyStatus = {"not_started": "idle", "starting": "starting", "ok": "ok", "down": "down"}[state]
        if providers:
            detail += "; providers: " + ", ".join(providers)
        return DependencyHealth(status=status, detail=detail)

    async def _sandbox(self) -> DependencyHealth:
        """The sandbox backend in use, why it was chosen, and whether it answers now."""
        if self._sandboxes is None:
            return DependencyHealth(status="not_configured", detail="sandboxes are disabled")
        backend = self._sandboxes.backend
        started = time.perf_counter()
        try:
            async with asyncio.timeout(2):
                await backend.ping()
        except Exception as exc:  # health reports, never raises
            return DependencyHealth(status="down", detail=f"{backend.kind} backend: {getattr(exc, 'message', exc)}")
        return DependencyHealth(
            status="ok",
            detail=self._sandboxes.describe(),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async def report(self) -> HealthReport:
        db = await self._db.health()
        dependencies = {
            "database": DependencyHealth(
                status="ok" if db.ok else "down",
                detail=db.backend if db.ok else f"{db.backend}: {db.error}",
                latency_ms=db.latency_ms,
            ),
            "llm": self._llm(),
            "docker": await self._sandbox(),
            "tts": DependencyHealth(status="not_configured", detail="speech arrives in a later release"),
        }
        return HealthReport(
            status="ok" if db.ok else "down",
            version=self._version,
            uptime_s=round(time.monotonic() - self._started_at, 1),
            dependencies=dependencies,
        )
