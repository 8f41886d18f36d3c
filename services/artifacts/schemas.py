"""Artifacts out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class ArtifactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    run_id: str | None
    kind: str
    title: str
    filename: str
    media_type: str
    size: int
    sha256: str
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def url(self) -> str:
        return f"/api/v1/agent/artifacts/{self.id}"


@dataclass(frozen=True)
class Download:
    """What the web layer needs to serve an artifact (with Range)."""

    path: Path
    filename: str
    media_type: str
    sha256: str
