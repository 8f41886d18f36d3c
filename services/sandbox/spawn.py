"""Start a child without stalling the event loop, whichever loop serves the app.

uvloop (what uvicorn picks when installed) starts children with ``fork()``, which copies this process's
page tables: about 15 ms with the event loop blocked for a 300 MB server. ``posix_spawn`` is a vfork in
glibc (under 1 ms), so every sandbox command starts through it; output is read by the loop from pipes and
the exit is awaited on a pidfd, so no thread is held while a command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
from dataclasses import dataclass, field


@dataclass
class Child:
    """A started child, its exit awaited on a pidfd."""

    pid: int
    _pidfd: int
    returncode: int | None = None
    _exited: asyncio.Future[None] | None = None

    async def wait(self) -> int:
        """The exit code, negative for a signal (as ``subprocess`` reports it). Any number may wait at once."""
        if self.returncode is None:
            if self._exited is None:
                loop = asyncio.get_running_loop()
                self._exited = exited = loop.create_future()

                def on_exit() -> None:
                    loop.remove_reader(self._pidfd)
                    _, status = os.waitpid(self.pid, 0)  # it has exited: the pidfd said so
                    os.close(self._pidfd)
                    self.returncode = os.waitstatus_to_exitcode(status)
                    if not exited.done():
                        exited.set_result(None)

                loop.add_reader(self._pidfd, on_exit)
            await asyncio.shield(self._exited)
        assert self.returncode is not None
        return self.returncode

    @property
    def running(self) -> bool:
        """Whether it has not exited yet (a zombie counts as exited)."""
        if self.returncode is not None:
            return False
        return os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def kill_group(self) -> None:
        """SIGKILL the child's whole process group (it leads its own session)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


@dataclass
class Spawned(Child):
    stdout: asyncio.StreamReader = field(default_factory=asyncio.StreamReader)
    stderr: asyncio.StreamReader = field(default_factory=asyncio.StreamReader)
    _pipes: list[asyncio.BaseTransport] = field(default_factory=list)

    def close(self) -> None:
        """Stop reading: output the child still writes goes nowhere (it gets SIGPIPE)."""
        for pipe in self._pipes:
            pipe.close()


def spawn_child(argv: list[str], *, env: dict[str, str], fds: dict[int, int]) -> Child:
    """Start ``argv`` (``argv[0]`` an absolute path) leading a new session, with ``fds`` as its descriptors
    (target: source; at least 0, 1 and 2). A vfork: it returns once the child has exec'd."""
    # Copies above the targets: a source that is already some target's number would be overwritten first, or
    # (dup2 onto itself) keep its close-on-exec flag.
    copies = {target: fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, 10) for target, source in fds.items()}
    try:
        pid = os.posix_spawn(
            argv[0], argv, env, setsid=True,
            file_actions=[(os.POSIX_SPAWN_DUP2, source, target) for target, source in sorted(copies.items())],
        )  # fmt: skip
    finally:
        for copy in copies.values():
            os.close(copy)
    return Child(pid=pid, _pidfd=os.pidfd_open(pid))


async def spawn(argv: list[str], *, env: dict[str, str]) -> Spawned:
    """``argv[0]`` must be an absolute path. stdin is /dev/null, stdout and stderr are read by the loop."""
    loop = asyncio.get_running_loop()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        child = spawn_child(argv, env=env, fds={0: devnull, 1: out_write, 2: err_write})
    except BaseException:
        for fd in (out_read, err_read):
            os.close(fd)
        raise
    finally:
        for fd in (out_write, err_write, devnull):
            os.close(fd)
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
    return Spawned(pid=child.pid, _pidfd=child._pidfd, stdout=readers[0], stderr=readers[1], _pipes=pipes)
