"""Sandboxes as other capabilities see them, without importing the sandbox capability: preparing a user's new
sandbox, and running a program in one of a user's sandboxes with its stdin and stdout as a byte stream.

The sandbox capability asks every provisioner for the read-only host folders each sandbox must see (given when a
sandbox is started, the warm pool's too, so they are the same for every sandbox) and tells them when a sandbox has
been handed to a user (they may write files into its workspace, e.g. its home's config files) and when it is
gone (they tidy up what they made for it, e.g. revoke its key). Provisioning never fails a create: a provisioner
that fails is logged and the sandbox is still the user's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from services.errors import UpstreamUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxMount:
    """A host folder every sandbox sees, read-only, at ``sandbox_path``."""

    host_path: str
    sandbox_path: str


@dataclass(frozen=True)
class NewSandbox:
    """A sandbox just handed to its user, and how to put a file into its workspace (``path`` relative to
    /workspace; the home is ``.home``)."""

    sandbox_id: str
    user_id: str
    template: str
    write_file: Callable[[str, bytes], Awaitable[None]]


class Provisioner(Protocol):
    def mounts(self) -> list[SandboxMount]: ...

    async def sandbox_created(self, sandbox: NewSandbox) -> None: ...

    async def sandbox_destroyed(self, user_id: str, sandbox_id: str) -> None: ...


class ProcessStream(Protocol):
    """A program's stdin and stdout: ``read`` gives ``b""`` at its end; ``close`` ends it (idempotent)."""

    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


ProcessOpener = Callable[[str, str, list[str], dict[str, str]], Awaitable[ProcessStream]]


class Provisioners:
    def __init__(self) -> None:
        self._all: list[Provisioner] = []
        self._opener: ProcessOpener | None = None

    def serve_processes(self, opener: ProcessOpener) -> None:
        """The sandbox capability's way to run a program in a user's sandbox (one per process)."""
        self._opener = opener

    async def open_process(self, user_id: str, sandbox_id: str, argv: list[str], env: dict[str, str]) -> ProcessStream:
        """``argv`` in the user's live sandbox ``sandbox_id`` (404 for another's or a gone one; 503 when this
        instance runs no sandboxes)."""
        if self._opener is None:
            raise UpstreamUnavailableError("sandboxes are not enabled on this instance", code="sandboxes_disabled")
        return await self._opener(user_id, sandbox_id, argv, env)

    def add(self, provisioner: Provisioner) -> None:
        self._all.append(provisioner)

    def mounts(self) -> list[SandboxMount]:
        return [mount for provisioner in self._all for mount in provisioner.mounts()]

    async def created(self, sandbox: NewSandbox) -> None:
        for provisioner in self._all:
            try:
                await provisioner.sandbox_created(sandbox)
            except Exception:
                log.exception("provisioning sandbox %s failed (%s)", sandbox.sandbox_id, type(provisioner).__name__)

    async def destroyed(self, user_id: str, sandbox_id: str) -> None:
        for provisioner in self._all:
            try:
                await provisioner.sandbox_destroyed(user_id, sandbox_id)
            except Exception:
                log.exception("tidying up after sandbox %s failed (%s)", sandbox_id, type(provisioner).__name__)
