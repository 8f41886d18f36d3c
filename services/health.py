"""Liveness and the state of each dependency. Never starts anything (the local model starts on first use)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel

from services.db.database import Database

DependencyStatus = Literal["ok", "down", "not_configured", "starting"]


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
    def __init__(self, *, db: Database, version: str, started_at: float | None = None) -> None:
        self._db = db
        self._version = version
        self._started_at = started_at or time.monotonic()

    async def report(self) -> HealthReport:
        db = await self._db.health()
        dependencies = {
            "database": DependencyHealth(
                status="ok" if db.ok else "down",
                detail=db.backend if db.ok else f"{db.backend}: {db.error}",
                latency_ms=db.latency_ms,
            ),
            "llm": DependencyHealth(status="not_configured", detail="chat arrives in a later release"),
            "docker": DependencyHealth(status="not_configured", detail="sandboxes arrive in a later release"),
            "tts": DependencyHealth(status="not_configured", detail="speech arrives in a later release"),
        }
        return HealthReport(
            status="ok" if db.ok else "down",
            version=self._version,
            uptime_s=round(time.monotonic() - self._started_at, 1),
            dependencies=dependencies,
        )
