"""Sandboxes in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class SandboxCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: Literal["python"] = "python"
    timeout_s: int | None = Field(default=None, ge=30, le=7 * 24 * 3600)
    cpu: float | None = Field(default=None, gt=0, le=64)
    memory_mb: int | None = Field(default=None, ge=32, le=1024 * 1024)
    network: bool = False
    env: dict[EnvName, Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict, max_length=64)
    session_id: str | None = Field(default=None, max_length=32)


class SandboxRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    status: str
    backend: str
    template: str
    cpu: float
    memory_mb: int
    pids: int
    disk_mb: int
    network: bool
    session_id: str | None
    created_at: datetime
    expires_at: datetime
    destroyed_at: datetime | None
    destroy_reason: str | None


class SandboxDetail(SandboxRead):
    disk_used_bytes: int | None = None


class ExecRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    workdir: str | None = Field(default=None, max_length=1024)
    env: dict[EnvName, Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict, max_length=64)
    stream: bool = False


class ExecResponse(BaseModel):
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    elapsed_ms: int


class FileEntryRead(BaseModel):
    name: str
    type: str
    size: int
    modified: datetime


class DirectoryListing(BaseModel):
    path: str
    entries: list[FileEntryRead]
