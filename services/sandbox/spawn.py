"""Start a child without stalling the event loop, whichever loop serves the app.

uvloop (what uvicorn picks when installed) starts children with ``fork()``, which copies this process's
page tables: about 15 ms with the event loop blocked for a 300 MB server. ``posix_spawn`` is a vfork in
glibc (under 1 ms), so every sandbox command starts through it; output is read by the loop from pipes and
the exit is awaited on a pidfd, so no thread is held while a command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass


@dataclass
class Spawned:
    pid: int
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader
    _pidfd: int
    _pipes: list[asyncio.BaseTransport]
    returncode: int | None = None

    async def wait(self) -> int:
        """The exit code, negative for a signal (as ``subprocess`` reports it)."""
        if self.returncode is None:
            loop = asyncio.get_running_loop()
            exited = loop.create_future()

            def on_exit() -> None:
                if not exited.done():
                    exited.set_result(None)

            loop.add_reader(self._pidfd, on_exit)
            try:
                await exited
            finally:
                loop.remove_reader(self._pidfd)
            _, status = os.waitpid(self.pid, 0)  # noqa: ASYNC222  (it has exited: the pidfd said so)
            self.returncode = os.waitstatus_to_exitcode(status)
            os.close(self._pidfd)
        return self.returncode

    def close(self) -> None:
        """Stop reading: output the child still writes goes nowhere (it gets SIGPIPE)."""
        for pipe in self._pipes:
            pipe.close()

    def kill_group(self) -> None:
        """SIGKILL the child's whole session (it is its own process group)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


async def spawn(argv: list[str], *, env: dict[str, str]) -> Spawned:
    """``argv[0]`` must be an absolute path. stdin is /dev/null; the child leads a new session."""
    loop = asyncio.get_running_loop()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = os.posix_spawn(  # noqa: ASYNC221  (a vfork: returns once the child has exec'd)
            argv[0], argv, env, setsid=True,
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, out_write, 1),
                          (os.POSIX_SPAWN_DUP2, err_write, 2)],
        )  # fmt: skip
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        for fd in (out_write, err_write, devnull):
            os.close(fd)
    pidfd = os.pidfd_open(pid)
    readers: list[asyncio.StreamReader] = []
    pipes: list[asyncio.BaseTransport] = []
    for fd in (out_read, err_read):
        reader = asyncio.StreamReader(limit=2**20)
        pipe, _ = await loop.connect_read_pipe(
            lambda r=reader: asyncio.StreamReaderProtocol(r),  # type: ignore[misc]
            os.fdopen(fd, "rb", buffering=0),  # the transport owns and closes it
        )
        readers.append(reader)
        pipes.append(pipe)
    return Spawned(pid=pid, stdout=readers[0], stderr=readers[1], _pidfd=pidfd, _pipes=pipes)
