"""The contract every sandbox backend keeps (Docker engine now; a local isolated backend next)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from services.provisioning import SandboxMount

WORKSPACE = "/workspace"
# The sandbox user's home: /home/sandbox links here, so config files and shell history last as long as the
# workspace does.
HOME = "/workspace/.home"
TERMINAL_ENV = {"TERM": "xterm-256color", "COLORTERM": "truecolor", "LANG": "C.UTF-8", "HOME": "/home/sandbox",
                "PS1": "\\[\\e[1;32m\\]sandbox\\[\\e[0m\\]:\\[\\e[1;34m\\]\\w\\[\\e[0m\\]\\$ "}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    cpu: float
    memory_mb: int
    pids: int
    disk_mb: int


@dataclass(frozen=True)
class SandboxSpec:
    sandbox_id: str
    user_id: str
    image: str
    limits: Limits
    network: bool = False
    env: dict[str, str] = field(default_factory=dict)
    # Host folders it sees read-only (the same for every sandbox: services/provisioning.py).
    mounts: tuple[SandboxMount, ...] = ()


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    elapsed_ms: int
    # The workspace's size when the command ended, where the backend measures it in the same round trip.
    disk_used_bytes: int | None = None


@dataclass(frozen=True)
class OutputChunk:
    stream: Literal["stdout", "stderr"]
    text: str


@dataclass(frozen=True)
class PtySpec:
    """A program to run on a terminal: ``argv`` (``argv[0]`` looked up on the sandbox's PATH), its window size,
    extra environment and the folder it starts in. It runs as the sandbox user with ``TERM=xterm-256color`` and
    ``HOME`` the persistent home (``/workspace/.home``)."""

    argv: list[str]
    rows: int
    cols: int
    workdir: str = WORKSPACE
    env: dict[str, str] = field(default_factory=dict)


class PtyProcess(Protocol):
    """A program on a pseudo-terminal inside a sandbox: bytes both ways, a window size, an end."""

    exit_code: int | None  # set once the program has exited (None while it runs, or when no code is known)

    async def read(self) -> bytes:
        """The next output as it comes; ``b""`` once the program has exited and its output is all read."""
        ...

    async def write(self, data: bytes) -> None:
        """Input as if typed (``\x03`` is Ctrl-C). Raises ``ConflictError`` once the program has ended."""
        ...

    async def resize(self, rows: int, cols: int) -> None: ...

    async def close(self) -> None:
        """Hang up: the program and what it runs in the foreground are killed (background jobs started with
        ``nohup`` or ``setsid`` live on, as after closing a real terminal). Safe to call twice."""
        ...


@dataclass(frozen=True)
class FileEntry:
    name: str
    type: Literal["file", "dir", "link", "other"]
    size: int
    modified: datetime


@dataclass(frozen=True)
class LabelledSandbox:
    """A sandbox the engine holds, as its labels tell it."""

    ref: str
    sandbox_id: str
    user_id: str
    owner: str  # the instance that started it ("" for one started before instances had ids)


class SandboxBackend(Protocol):
    """Where sandboxes run. Every method may raise ``UpstreamUnavailableError`` when the engine does not answer
    or fails. What the engine refuses becomes a domain error of ours, never the engine's own message (which names
    containers and host paths): ``NotFoundError`` for a sandbox that is gone, ``ConflictError`` with the code
    ``sandbox_not_running`` for one being removed, ``ValidationFailedError`` for a request the engine will not do.

    Paths given to file methods are absolute, already resolved and checked to lie inside ``/workspace``.
    """

    kind: str

    async def ping(self) -> str:
        """The engine's version; raises when it does not answer."""
        ...

    async def create(self, spec: SandboxSpec) -> str:
        """Start a sandbox and return the backend's reference to it (a container id). A create that fails, or
        whose caller is cancelled, leaves nothing behind (no container, volume, directory or cgroup)."""
        ...

    def exec_stream(
        self, ref: str, command: str, *, timeout_s: float, workdir: str, env: dict[str, str], max_output: int
    ) -> AsyncIterator[OutputChunk | ExecResult]:
        """Run ``sh -c command``, yielding output as it comes and the result last (``result_of`` waits for it).
        Killed after ``timeout_s``; each stream kept up to ``max_output`` bytes. Closing the stream before its
        result (a reader that leaves, a stopped run) kills the command and everything it started."""
        ...

    async def open_pty(self, ref: str, spec: PtySpec) -> PtyProcess:
        """Start ``spec.argv`` on a new pseudo-terminal in the sandbox, in the same namespaces as its commands (a
        server a command started is reachable from the terminal, and the other way round)."""
        ...

    async def put_file(self, ref: str, path: str, data: bytes) -> None:
        """Write a file, creating parent folders, owned by the sandbox user."""
        ...

    async def get_file(self, ref: str, path: str) -> bytes:
        """A regular file's bytes; ``NotFoundError`` if missing, ``InvalidRequestError`` if not a regular file."""
        ...

    async def list_dir(self, ref: str, path: str) -> list[FileEntry]: ...

    async def resolve(self, ref: str, path: str) -> str:
        """The path with every symlink followed, as the sandbox sees it."""
        ...

    async def disk_usage(self, ref: str) -> int:
        """Bytes used under /workspace."""
        ...

    async def destroy(self, ref: str) -> None:
        """Remove the sandbox and its workspace. Missing is fine."""
        ...

    async def list_labelled(self) -> list[LabelledSandbox]:
        """Every sandbox of this deployment the engine holds, running or not, or what is left of one (a workspace
        volume without its container), with the instance that started it; each ``ref`` is one :meth:`destroy`
        takes."""
        ...


async def create_or_undo(create: Awaitable[str], undo: Callable[[str], Awaitable[None]]) -> str:
    """Await a create that runs on by itself (in a thread, which a cancellation does not stop). If the caller is
    cancelled, the create is let finish and what it made is undone before the cancellation goes on; a second
    cancellation leaves the undo running on its own."""
    task = asyncio.ensure_future(create)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        async def undo_when_made() -> None:
            with contextlib.suppress(Exception):
                await undo(await task)

        await asyncio.shield(asyncio.ensure_future(undo_when_made()))
        raise


async def result_of(stream: AsyncIterator[OutputChunk | ExecResult]) -> ExecResult:
    """The result at the end of an exec stream."""
    result: ExecResult | None = None
    async for item in stream:
        if isinstance(item, ExecResult):
            result = item
    if result is None:
        raise RuntimeError("the exec stream ended without a result")
    return result
