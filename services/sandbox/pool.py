"""A warm pool: sandboxes started ahead so that creating one is a hand-out, not an engine round trip.

Each pooled sandbox belongs to nobody until it is handed out, is handed out once (never shared, and never
returned once a user had it), and is replaced in the background. What the pool holds is destroyed when the app stops; a
crash leaves labelled sandboxes that reconciliation removes at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from services.sandbox.base import SandboxBackend, SandboxSpec

log = logging.getLogger(__name__)
STOP_WAIT_S = 30.0
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class WarmSandbox:
    ref: str
    spec: SandboxSpec


class WarmPool:
    def __init__(self, backend: SandboxBackend, *, size: int, make_spec: Callable[[], SandboxSpec]) -> None:
        self.size = size
        self._backend = backend
        self._make_spec = make_spec
        self._ready: deque[WarmSandbox] = deque()
        self._wanted = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    @property
    def ready(self) -> int:
        return len(self._ready)

    def start(self) -> None:
        if self.size > 0 and self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._fill(), name="sandbox-warm-pool")

    def take(self) -> WarmSandbox | None:
        """The oldest ready sandbox, now the caller's alone. The caller then says :meth:`handed_out` (the pool
        starts a replacement) or :meth:`put_back` (its create failed before anything ran in it)."""
        return self._ready.popleft() if self._ready else None

    def handed_out(self) -> None:
        self._wanted.set()

    def put_back(self, warm: WarmSandbox) -> None:
        """Return one that never reached its caller: nothing ran in it, so it is as fresh as it was."""
        self._ready.appendleft(warm)

    async def stop(self) -> None:
        """Finish the sandbox being started (so none is orphaned), then destroy every pooled one."""
        self._stopping = True
        self._wanted.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_S)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        while self._ready:
            warm = self._ready.popleft()
            with contextlib.suppress(Exception):
                await self._backend.destroy(warm.ref)

    async def _fill(self) -> None:
        backoff = 1.0
        while not self._stopping:
            self._wanted.clear()
            while len(self._ready) < self.size and not self._stopping:
                spec = self._make_spec()
                try:
                    ref = await self._backend.create(spec)
                except Exception as exc:  # an engine hiccup must not end the pool; retry with a growing pause
                    self.last_error = str(getattr(exc, "message", exc))
                    log.warning("warm pool: could not start a sandbox (%s); retrying in %.0f s", self.last_error,
                                backoff)  # fmt: skip
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wanted.wait(), backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    self._wanted.clear()
                    continue
                backoff, self.last_error = 1.0, None
                self._ready.append(WarmSandbox(ref=ref, spec=spec))
            if not self._stopping:
                await self._wanted.wait()
