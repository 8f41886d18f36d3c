"""Terminals in sandboxes: a program on a pseudo-terminal, its recent output kept for whoever attaches next,
and any number of viewers (WebSocket clients, open pages) following it. They live in this process (a restart
ends them, as it ends the sandbox's processes on the local backend)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.clock import Clock, utcnow
from services.errors import NotFoundError, QuotaExceededError
from services.ids import new_id
from services.periodic import Periodic
from services.sandbox.base import PtyProcess
from services.sandbox.schemas import TerminalRead
from services.settings import SandboxSettings

log = logging.getLogger(__name__)


class Viewer:
    """One attached client's output not yet taken, coalesced: a slow viewer never holds the terminal back, and
    one that falls further behind than the scrollback keeps only the latest output (as a reattach would)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending = bytearray()
        self._ready = asyncio.Event()
        self._ended = False

    def feed(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) > self._limit:
            del self._pending[: len(self._pending) - self._limit]
        self._ready.set()

    def end(self) -> None:
        self._ended = True
        self._ready.set()

    async def next(self) -> bytes:
        """Everything output since the last call; ``b""`` once the terminal has ended and all was taken."""
        while not self._pending and not self._ended:
            await self._ready.wait()
            self._ready.clear()
        data = bytes(self._pending)
        self._pending.clear()
        return data


class Terminal:
    def __init__(
        self,
        *,
        sandbox_id: str,
        user_id: str,
        shell: str,
        args: list[str],
        rows: int,
        cols: int,
        process: PtyProcess,
        scrollback_bytes: int,
        clock: Clock,
        on_end: Callable[[Terminal], Awaitable[None]],
    ) -> None:
        self.id = new_id("term")
        self.sandbox_id, self.user_id, self.shell, self.args = sandbox_id, user_id, shell, args
        self.rows, self.cols = rows, cols
        self.created_at = self.last_active_at = clock()
        self.ended_reason: str | None = None
        self._process = process
        self._clock = clock
        self._limit = scrollback_bytes
        self._scrollback: deque[bytes] = deque()
        self._kept = 0
        self._viewers: set[Viewer] = set()
        self._on_end = on_end
        self._pump = asyncio.create_task(self._follow(), name=f"terminal-{self.id}")

    @property
    def exit_code(self) -> int | None:
        return self._process.exit_code

    @property
    def running(self) -> bool:
        return self.ended_reason is None

    def read(self) -> TerminalRead:
        return TerminalRead(id=self.id, sandbox_id=self.sandbox_id, shell=self.shell, args=self.args, rows=self.rows,
                            cols=self.cols, status="running" if self.running else "exited", exit_code=self.exit_code,
                            created_at=self.created_at, last_active_at=self.last_active_at,
                            attached=len(self._viewers))  # fmt: skip

    def idle_since(self) -> datetime | None:
        """When it was last used, if no one is attached now."""
        return None if self._viewers else self.last_active_at

    def attach(self) -> Viewer:
        """A viewer that first gets the scrollback, then what comes (a terminal that has ended gives only the
        scrollback)."""
        viewer = Viewer(self._limit)
        if self._kept:
            viewer.feed(b"".join(self._scrollback))
        if self.running:
            self._viewers.add(viewer)
        else:
            viewer.end()
        self.last_active_at = self._clock()
        return viewer

    def detach(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)
        self.last_active_at = self._clock()

    async def write(self, data: bytes) -> None:
        self.last_active_at = self._clock()
        await self._process.write(data)

    async def resize(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        await self._process.resize(rows, cols)

    async def close(self, reason: str) -> None:
        """Hang up (the program ends) and tell every viewer; what made it end is ``reason``."""
        if self.ended_reason is None:
            self.ended_reason = reason
        await self._process.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump

    def _keep(self, data: bytes) -> None:
        self._scrollback.append(data)
        self._kept += len(data)
        while self._kept - len(self._scrollback[0]) >= self._limit:
            self._kept -= len(self._scrollback.popleft())
        for viewer in self._viewers:
            viewer.feed(data)

    async def _follow(self) -> None:
        try:
            while data := await self._process.read():
                self.last_active_at = self._clock()
                self._keep(data)
        except Exception:
            log.exception("terminal %s: reading its output failed", self.id)
        if self.ended_reason is None:
            code = self._process.exit_code
            self.ended_reason = "the program exited" + (f" with code {code}" if code is not None else "")
        with contextlib.suppress(Exception):
            await self._process.close()  # reaps what joined the sandbox for it
        for viewer in self._viewers:
            viewer.end()
        self._viewers.clear()
        await self._on_end(self)


class Terminals:
    """The open terminals of this process, by sandbox; idle ones are closed by a periodic sweep."""

    def __init__(self, settings: SandboxSettings, clock: Clock = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._open: dict[str, Terminal] = {}
        self._sweeper = Periodic("terminal-idle", min(60.0, settings.terminal_idle_s / 4), self.close_idle)

    def start(self) -> None:
        self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()
        await asyncio.gather(*(t.close("the server is stopping") for t in list(self._open.values())))

    def of_sandbox(self, sandbox_id: str) -> list[Terminal]:
        return sorted((t for t in self._open.values() if t.sandbox_id == sandbox_id), key=lambda t: t.created_at)

    def get(self, sandbox_id: str, terminal_id: str) -> Terminal:
        terminal = self._open.get(terminal_id)
        if terminal is None or terminal.sandbox_id != sandbox_id:
            raise NotFoundError("terminal not found (it ended, or was closed)", code="terminal_not_found")
        return terminal

    def check_room(self, sandbox_id: str) -> None:
        if len(self.of_sandbox(sandbox_id)) >= self._settings.max_terminals:
            raise QuotaExceededError(f"a sandbox has at most {self._settings.max_terminals} terminals open: "
                                     "close one first", code="terminal_quota")  # fmt: skip

    def add(
        self, *, sandbox_id: str, user_id: str, shell: str, args: list[str], rows: int, cols: int, process: PtyProcess
    ) -> Terminal:
        terminal = Terminal(sandbox_id=sandbox_id, user_id=user_id, shell=shell, args=args, rows=rows, cols=cols,
                            process=process, scrollback_bytes=self._settings.terminal_scrollback_bytes,
                            clock=self._clock, on_end=self._ended)  # fmt: skip
        self._open[terminal.id] = terminal
        return terminal

    async def _ended(self, terminal: Terminal) -> None:
        self._open.pop(terminal.id, None)

    async def close_sandbox(self, sandbox_id: str, reason: str) -> None:
        await asyncio.gather(*(t.close(reason) for t in self.of_sandbox(sandbox_id)))

    async def close_idle(self) -> int:
        limit = self._settings.terminal_idle_s
        now = self._clock()
        idle = [t for t in list(self._open.values())
                if (since := t.idle_since()) is not None and (now - since).total_seconds() >= limit]  # fmt: skip
        await asyncio.gather(*(t.close(f"closed after {limit:g} s idle") for t in idle))
        return len(idle)
