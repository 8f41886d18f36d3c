"""Terminals in Docker sandboxes, on the real engine: a shell keeps its state between commands, answers Ctrl-C and
resizes, shares the sandbox's network with commands, leaves nothing running once closed, and keeps its home in the
workspace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from services.errors import ConflictError, NotFoundError
from services.sandbox.backends.docker import DockerSandboxBackend
from services.sandbox.base import WORKSPACE, ExecResult, Limits, PtyProcess, PtySpec, SandboxSpec, result_of
from services.sandbox.image import IMAGE

LIMITS = Limits(cpu=1.0, memory_mb=256, pids=64, disk_mb=64)


@pytest.fixture
def backend(docker_engine: str) -> DockerSandboxBackend:
    return DockerSandboxBackend(docker_host=docker_engine, instance="tests-" + uuid.uuid4().hex[:6], owner="ins_tests")


@pytest.fixture
async def sandbox(backend: DockerSandboxBackend) -> AsyncIterator[str]:
    ref = await backend.create(SandboxSpec(sandbox_id=uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=LIMITS))
    yield ref
    await backend.destroy(ref)


class Terminal:
    """Reads a terminal up to a marker (what came after it is kept for the next read), within a deadline."""

    def __init__(self, pty: PtyProcess) -> None:
        self.pty = pty
        self.pending = b""
        self.commands = 0

    async def until(self, marker: str, timeout_s: float = 20) -> str:
        wanted = marker.encode()
        try:
            async with asyncio.timeout(timeout_s):
                while wanted not in self.pending:
                    data = await self.pty.read()
                    assert data, f"the terminal ended before {marker!r}: {self.pending!r}"
                    self.pending += data
        except TimeoutError:
            raise AssertionError(f"no {marker!r} within {timeout_s} s: {self.pending!r}") from None
        end = self.pending.index(wanted) + len(wanted)
        text, self.pending = self.pending[:end], self.pending[end:]
        return text.decode(errors="replace")

    async def run(self, command: str, timeout_s: float = 20) -> list[str]:
        """Type a shell command and return the lines it printed. The end marker is typed quoted, so that only the
        shell's echo of it, not the terminal's echo of what was typed, matches."""
        self.commands += 1
        await self.pty.write(f'{command}\recho "end"-{self.commands}\r'.encode())
        text = await self.until(f"end-{self.commands}\r\n", timeout_s)
        return [line.strip() for line in text.split("\r\n")]

    async def to_end(self, timeout_s: float = 20) -> None:
        async with asyncio.timeout(timeout_s):
            while await self.pty.read():
                pass


async def shell(
    backend: DockerSandboxBackend, ref: str, *, workdir: str = WORKSPACE, env: dict[str, str] | None = None
) -> Terminal:
    """A shell on a 24x80 terminal, once its prompt shows."""
    spec = PtySpec(argv=["sh"], rows=24, cols=80, workdir=workdir, env=env or {})
    terminal = Terminal(await backend.open_pty(ref, spec))
    await terminal.until("sandbox")  # the prompt
    return terminal


async def run(backend: DockerSandboxBackend, ref: str, command: str) -> ExecResult:
    return await result_of(
        backend.exec_stream(ref, command, timeout_s=20, workdir="/workspace", env={}, max_output=100_000)
    )


async def wait_for_process(backend: DockerSandboxBackend, ref: str, command: str) -> None:
    """Until ``ps`` in the sandbox lists a process running ``command``."""
    async with asyncio.timeout(20):
        while command not in (await run(backend, ref, "ps -o args")).stdout.splitlines():
            await asyncio.sleep(0.1)


async def test_the_shell_keeps_its_folder_and_variables(backend: DockerSandboxBackend, sandbox: str) -> None:
    terminal = await shell(backend, sandbox, env={"EXTRA": "given"})
    try:
        assert "/workspace" in await terminal.run("pwd")
        assert "/tmp" in await terminal.run("cd /tmp && pwd")
        assert "/tmp" in await terminal.run("pwd")
        await terminal.run("export X=1")
        assert "x=1" in await terminal.run('echo "x=$X"')
        lines = await terminal.run('echo "$TERM $HOME $EXTRA $(id -u)"')
        assert "xterm-256color /home/sandbox given 1000" in lines
    finally:
        await terminal.pty.close()


async def test_it_starts_in_the_folder_asked_for_or_the_workspace(backend: DockerSandboxBackend, sandbox: str) -> None:
    await run(backend, sandbox, "mkdir -p /workspace/project")
    for workdir, expected in [("/workspace/project", "/workspace/project"), ("/workspace/missing", "/workspace")]:
        terminal = await shell(backend, sandbox, workdir=workdir)
        try:
            assert expected in await terminal.run("pwd")
        finally:
            await terminal.pty.close()


async def test_python_repl(backend: DockerSandboxBackend, sandbox: str) -> None:
    terminal = await shell(backend, sandbox)
    try:
        await terminal.pty.write(b"python3\r")
        await terminal.until(">>> ")
        await terminal.pty.write(b"6*7\r")
        assert "42" in (await terminal.until(">>> ")).split("\r\n")
        await terminal.pty.write(b"exit()\r")
        assert "back" in await terminal.run("echo back")
    finally:
        await terminal.pty.close()


async def test_ctrl_c_interrupts_the_foreground_command(backend: DockerSandboxBackend, sandbox: str) -> None:
    terminal = await shell(backend, sandbox)
    try:
        await terminal.pty.write(b"sleep 100\r")
        await wait_for_process(backend, sandbox, "sleep 100")
        await terminal.pty.write(b"\x03")
        assert "answered" in await terminal.run("echo answered", timeout_s=10)
        assert "sleep 100" not in (await run(backend, sandbox, "ps -o args")).stdout.splitlines()
    finally:
        await terminal.pty.close()


async def test_resize(backend: DockerSandboxBackend, sandbox: str) -> None:
    terminal = await shell(backend, sandbox)
    try:
        assert "24 80" in await terminal.run("stty size")
        await terminal.pty.resize(30, 100)
        assert "30 100" in await terminal.run("stty size")
    finally:
        await terminal.pty.close()


async def test_commands_and_the_terminal_share_the_network(backend: DockerSandboxBackend, sandbox: str) -> None:
    fetch = ("python3 -c \"import time, urllib.request\nfor _ in range(100):\n    try:\n"
             "        print('status', urllib.request.urlopen('http://127.0.0.1:{port}/').status); break\n"
             "    except OSError:\n        time.sleep(0.1)\"")  # fmt: skip
    started = await run(backend, sandbox, "python3 -m http.server 8765 >/dev/null 2>&1 &")
    assert started.exit_code == 0
    terminal = await shell(backend, sandbox)
    try:
        assert "status 200" in await terminal.run(fetch.format(port=8765))
        await terminal.run("python3 -m http.server 8766 >/dev/null 2>&1 &")
        assert "status 200" in (await run(backend, sandbox, fetch.format(port=8766))).stdout.splitlines()
    finally:
        await terminal.pty.close()


async def test_closing_hangs_up(backend: DockerSandboxBackend, sandbox: str) -> None:
    """The shell and what it runs are killed; what ignores SIGHUP (as nohup makes it, which the image lacks) or
    left the session with setsid lives on, as after closing a real terminal."""
    terminal = await shell(backend, sandbox)
    pid = next(line[4:] for line in await terminal.run('echo "pid=$$"') if line.startswith("pid="))
    await terminal.run("sh -c 'trap \"\" HUP; exec sleep 4322' >/dev/null 2>&1 &")
    await terminal.run("setsid sleep 4324 >/dev/null 2>&1 &")
    await terminal.run("sleep 4323 &")
    await terminal.pty.write(b"sleep 4321\r")
    await wait_for_process(backend, sandbox, "sleep 4321")
    await terminal.pty.close()
    await terminal.pty.close()  # twice is fine
    left = (await run(backend, sandbox, f"ps -o args; test -e /proc/{pid} && echo shell-alive")).stdout.splitlines()
    assert "sleep 4321" not in left and "sleep 4323" not in left and "shell-alive" not in left
    assert "sleep 4322" in left and "sleep 4324" in left
    assert await terminal.pty.read() == b""
    with pytest.raises(ConflictError):
        await terminal.pty.write(b"echo\r")
    await terminal.pty.resize(10, 10)  # nothing to resize: no error


async def test_the_program_exiting_ends_the_terminal(backend: DockerSandboxBackend, sandbox: str) -> None:
    terminal = await shell(backend, sandbox)
    await terminal.pty.write(b"exit 3\r")
    await terminal.to_end()
    assert terminal.pty.exit_code == 3
    with pytest.raises(ConflictError) as error:
        await terminal.pty.write(b"echo\r")
    assert error.value.code == "terminal_closed"
    await terminal.pty.close()
    notes = await run(backend, sandbox, "ls /tmp/.agent-ui-exec-* | wc -l")  # each pid note: only this exec's own
    assert notes.stdout.strip() == "1"


async def test_the_home_lives_in_the_workspace(backend: DockerSandboxBackend, sandbox: str) -> None:
    terminal = await shell(backend, sandbox)
    try:
        await terminal.run("mkdir -p ~/.config && echo kept > ~/.config/x")
    finally:
        await terminal.pty.close()
    assert await backend.get_file(sandbox, "/workspace/.home/.config/x") == b"kept\n"


async def test_a_missing_or_destroyed_sandbox(backend: DockerSandboxBackend) -> None:
    with pytest.raises(NotFoundError):
        await backend.open_pty("agent-ui-no-such-sandbox", PtySpec(argv=["sh"], rows=24, cols=80))
    ref = await backend.create(SandboxSpec(sandbox_id=uuid.uuid4().hex[:12], user_id="u", image=IMAGE, limits=LIMITS))
    terminal = await shell(backend, ref)
    await backend.destroy(ref)
    await terminal.to_end()  # the container went: the terminal ended with it
    assert terminal.pty.exit_code is None
    await terminal.pty.close()  # nothing raised for a sandbox already gone
    with pytest.raises(NotFoundError):
        await backend.open_pty(ref, PtySpec(argv=["sh"], rows=24, cols=80))


async def test_an_open_cancelled_midway_leaves_nothing_running(backend: DockerSandboxBackend, sandbox: str) -> None:
    opening = asyncio.ensure_future(backend.open_pty(sandbox, PtySpec(argv=["sleep", "4999"], rows=24, cols=80)))
    await asyncio.sleep(0)  # the start is under way in its thread
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert "sleep 4999" not in (await run(backend, sandbox, "ps -o args")).stdout.splitlines()
