"""Sandboxes in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

MAX_ENV_VARS = 64
MAX_ENV_VALUE = 4096
MAX_ENV_BYTES = 32 * 1024  # names and values together: what reaches the engine (and a local sandbox's argv)
# Paths: what Linux and the engines take (a name of at most 255 bytes) and a total well under PATH_MAX.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _env_size(env: dict[str, str]) -> dict[str, str]:
    if sum(len(name.encode()) + len(value.encode()) + 2 for name, value in env.items()) > MAX_ENV_BYTES:
        raise ValueError(f"the environment is limited to {MAX_ENV_BYTES} bytes in all")
    return env


def check_workspace_path(path: str) -> str:
    """A path's shape (not where it leads): no NUL, no name longer than 255 bytes, 1024 bytes in all.
    Raises ``ValueError`` (a 422 at the edge)."""
    if "\x00" in path:
        raise ValueError("a path must not contain NUL characters")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise ValueError(f"a path is at most {MAX_PATH_BYTES} bytes")
    if any(len(part.encode()) > MAX_NAME_BYTES for part in path.split("/")):
        raise ValueError(f"a file or folder name is at most {MAX_NAME_BYTES} bytes")
    return path


# A POSIX environment variable name (what a shell can set and read).
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
EnvValue = Annotated[str, Field(max_length=MAX_ENV_VALUE), AfterValidator(no_nul)]
Env = Annotated[dict[EnvName, EnvValue], Field(max_length=MAX_ENV_VARS), AfterValidator(_env_size)]
WorkspacePath = Annotated[str, AfterValidator(check_workspace_path)]


class SandboxCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: Literal["python", "agents"] = Field(
        default="python", description="agents: with the Codex and Claude Code CLIs and the MCP bridge"
    )
    timeout_s: int | None = Field(default=None, ge=30, le=7 * 24 * 3600)
    cpu: float | None = Field(default=None, ge=0.01, le=64)  # engines take no less than 1% of a CPU
    memory_mb: int | None = Field(default=None, ge=32, le=1024 * 1024)
    network: StrictBool = False
    env: Env = Field(default_factory=dict)
    # The chat session or run the sandbox serves: yours (404 otherwise).
    session_id: str | None = Field(default=None, min_length=1, max_length=32)


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
    command: Annotated[str, StringConstraints(min_length=1, max_length=100_000), AfterValidator(no_nul)]
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    workdir: WorkspacePath | None = Field(default=None, max_length=MAX_PATH_BYTES)
    env: Env = Field(default_factory=dict)
    stream: StrictBool = False


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


# A program to start on a terminal: a name on the sandbox's PATH or an absolute path inside it.
Program = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_./+-]{1,255}$")]
Argument = Annotated[str, Field(max_length=4096), AfterValidator(no_nul)]


class TerminalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = Field(default=24, ge=2, le=500)
    cols: int = Field(default=80, ge=10, le=1000)
    shell: Program = "sh"
    args: list[Argument] = Field(default_factory=list, max_length=64)
    workdir: WorkspacePath | None = Field(default=None, max_length=MAX_PATH_BYTES)
    env: Env = Field(default_factory=dict)


class TerminalResize(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["resize"]
    rows: int = Field(ge=2, le=500)
    cols: int = Field(ge=10, le=1000)


class TerminalRead(BaseModel):
    id: str
    sandbox_id: str
    shell: str
    args: list[str]
    rows: int
    cols: int
    status: Literal["running", "exited"]
    exit_code: int | None
    created_at: datetime
    last_active_at: datetime
    # Viewers attached now (WebSocket clients and open pages).
    attached: int
