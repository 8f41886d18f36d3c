"""The MCP client pool against real servers: our own SDK server over stdio and HTTP, mcp-server-time over stdio,
and the reference `server-everything` (npm) over SSE and streamable HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.mcp.client import ByteStream, McpClientPool, McpError, ServerSpec

ROOT = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
NOTES = str(Path(__file__).parent / "servers" / "notes_server.py")
EVERYTHING = ROOT / ".tools" / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
SECRET = "s3cr3t-value-that-must-not-leak"


def notes(**env: str) -> ServerSpec:
    return ServerSpec("stdio", command=PYTHON, args=(NOTES,), env=env)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {within_s} s")


@contextlib.contextmanager
def serving(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        wait_for_port(port, process)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.asynccontextmanager
async def serving_async(command: list[str], port: int) -> AsyncIterator[None]:
    """``serving`` without blocking the event loop, so the pool sees the server go while it happens."""
    server = serving(command, port)
    await asyncio.to_thread(server.__enter__)
    try:
        yield
    finally:
        await asyncio.to_thread(server.__exit__, None, None, None)


def gone(pid: int) -> bool:
    """Whether the process is gone (a zombie counts as gone: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


async def until(condition: object, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.05)


async def server_pid(pool: McpClientPool, key: str, spec: ServerSpec) -> int:
    result = await pool.call_tool(key, spec, "pid", {})
    assert result.structured is not None
    return int(result.structured["result"])


@pytest.fixture
async def pool() -> AsyncIterator[McpClientPool]:
    pool = McpClientPool(connect_timeout_s=20, call_timeout_s=10)
    yield pool
    await pool.stop()


@pytest.fixture(scope="module")
def everything_sse() -> Iterator[str]:
    assert EVERYTHING.exists(), "server-everything is missing: run scripts/setup --dev"
    port = free_port()
    with serving([str(EVERYTHING), "sse"], port, {"PORT": str(port)}):
        yield f"http://127.0.0.1:{port}/sse"


@pytest.fixture(scope="module")
def everything_http() -> Iterator[str]:
    assert EVERYTHING.exists(), "server-everything is missing: run scripts/setup --dev"
    port = free_port()
    with serving([str(EVERYTHING), "streamableHttp"], port, {"PORT": str(port)}):
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture(scope="module")
def notes_http() -> Iterator[str]:
    """Our notes server over streamable HTTP, behind a bearer check (the token is SECRET)."""
    port = free_port()
    with serving([PYTHON, NOTES, "--transport", "streamable-http", "--port", str(port), "--token", SECRET], port):
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.fixture(scope="module")
def notes_sse() -> Iterator[str]:
    """Our notes server over SSE, behind the same bearer check."""
    port = free_port()
    with serving([PYTHON, NOTES, "--transport", "sse", "--port", str(port), "--token", SECRET], port):
        yield f"http://127.0.0.1:{port}/sse"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port whose kernel completes the handshake but where nobody ever reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


# --- stdio: our notes server ------------------------------------------------------------------------------------------


async def test_probe_initializes_and_lists_tools(pool: McpClientPool) -> None:
    result = await pool.probe(notes())

    assert result.ok and result.error is None
    assert (result.server_name, result.server_version) == ("notes", "1.2.3")
    tools = {tool.name: tool for tool in result.tools}
    assert {"add_note", "list_notes", "fail", "slow", "env", "pid"} <= set(tools)
    assert tools["add_note"].input_schema["required"] == ["text"]
    assert tools["add_note"].description == "Store a note in this process."
    assert 0 < result.latency_ms < 20_000


async def test_calls_reuse_one_session_and_return_results(pool: McpClientPool) -> None:
    spec = notes()
    added = await pool.call_tool("notes", spec, "add_note", {"text": "buy milk"})
    assert (added.is_error, added.text(), added.structured) == (False, "noted: buy milk", {"result": "noted: buy milk"})
    assert added.content == [{"type": "text", "text": "noted: buy milk"}]
    await pool.call_tool("notes", spec, "add_note", {"text": "call mum"})

    listed = await pool.call_tool("notes", spec, "list_notes", {})  # same process: the notes are still there

    assert listed.text() == "buy milk\ncall mum"
    assert [tool.name for tool in await pool.list_tools("notes", spec)][:2] == ["add_note", "list_notes"]


async def test_a_tools_own_error_is_a_result_not_an_exception(pool: McpClientPool) -> None:
    result = await pool.call_tool("notes", notes(), "fail", {})

    assert result.is_error
    assert "the notebook is on fire" in result.text()


async def test_env_reaches_the_server_and_the_host_env_does_not(pool: McpClientPool,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("AGENT_UI_MCP_TEST_HOST_ONLY", "host")
    spec = notes(NOTES_OWNER="ada")

    assert (await pool.call_tool("notes", spec, "env", {"name": "NOTES_OWNER"})).text() == "ada"
    assert (await pool.call_tool("notes", spec, "env", {"name": "AGENT_UI_MCP_TEST_HOST_ONLY"})).text() == "<unset>"


async def test_a_call_past_its_deadline_times_out_and_the_pool_stays_usable(pool: McpClientPool) -> None:
    spec = notes()
    before = await server_pid(pool, "notes", spec)

    started = time.monotonic()
    with pytest.raises(McpError) as caught:
        await pool.call_tool("notes", spec, "slow", {"seconds": 30}, timeout_s=0.5)
    elapsed = time.monotonic() - started

    assert (caught.value.kind, caught.value.message) == ("timeout", "no answer within 0.5 s")
    assert elapsed < 1.0
    assert await server_pid(pool, "notes", spec) == before  # same session
    # The server heard the cancellation and stopped the work.
    await until_text(pool, spec, "slow(30.0) cancelled")


async def until_text(pool: McpClientPool, spec: ServerSpec, expected: str) -> None:
    deadline = time.monotonic() + 5
    while expected not in (await pool.call_tool("notes", spec, "list_notes", {})).text():
        assert time.monotonic() < deadline, f"{expected!r} never appeared"
        await asyncio.sleep(0.05)


async def test_cancelling_the_caller_cancels_the_request_and_keeps_the_session(pool: McpClientPool) -> None:
    spec = notes()
    before = await server_pid(pool, "notes", spec)
    call = asyncio.create_task(pool.call_tool("notes", spec, "slow", {"seconds": 30}))
    await asyncio.sleep(0.3)

    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call

    await until_text(pool, spec, "slow(30.0) cancelled")
    assert await server_pid(pool, "notes", spec) == before


async def test_concurrent_first_uses_share_one_connect(pool: McpClientPool) -> None:
    spec = notes()
    pids = await asyncio.gather(*(server_pid(pool, "notes", spec) for _ in range(5)))
    assert len(set(pids)) == 1


async def test_a_killed_server_is_reconnected_on_the_next_call(pool: McpClientPool) -> None:
    spec = notes()
    first = await server_pid(pool, "notes", spec)

    os.kill(first, signal.SIGKILL)
    await until(lambda: gone(first))
    await asyncio.sleep(0.1)
    second = await server_pid(pool, "notes", spec)

    assert second != first
    assert (await pool.call_tool("notes", spec, "add_note", {"text": "again"})).text() == "noted: again"


async def test_a_server_dying_mid_call_says_how_and_the_next_call_reconnects(pool: McpClientPool) -> None:
    spec = notes()
    first = await server_pid(pool, "notes", spec)

    with pytest.raises(McpError) as caught:
        await pool.call_tool("notes", spec, "crash", {"code": 7})

    assert (caught.value.kind, caught.value.message) == ("exited", "the server exited with code 7: crashing with 7")
    assert await server_pid(pool, "notes", spec) != first


async def test_stop_ends_every_server_process(pool: McpClientPool) -> None:
    pids = [await server_pid(pool, key, notes()) for key in ("a", "b")]
    assert not any(gone(pid) for pid in pids)

    await pool.stop()

    await until(lambda: all(gone(pid) for pid in pids), within_s=1)


async def test_forget_and_an_edited_spec_replace_the_session(pool: McpClientPool) -> None:
    first = await server_pid(pool, "notes", notes(VERSION="1"))

    edited = notes(VERSION="2")
    second = await server_pid(pool, "notes", edited)
    assert second != first
    assert (await pool.call_tool("notes", edited, "env", {"name": "VERSION"})).text() == "2"
    await until(lambda: gone(first))

    await pool.forget("notes")
    assert gone(second)
    assert await server_pid(pool, "notes", edited) not in (first, second)


async def test_idle_sessions_close_themselves() -> None:
    pool = McpClientPool(connect_timeout_s=20, idle_s=0.5)
    try:
        spec = notes()
        first = await server_pid(pool, "notes", spec)
        await until(lambda: gone(first), within_s=5)
        assert await server_pid(pool, "notes", spec) != first
    finally:
        await pool.stop()


# --- other real servers -------------------------------------------------------------------------------------------


async def test_mcp_server_time_over_stdio(pool: McpClientPool) -> None:
    spec = ServerSpec("stdio", command=str(Path(PYTHON).parent / "mcp-server-time"), args=("--local-timezone", "UTC"))

    assert "get_current_time" in {tool.name for tool in await pool.list_tools("time", spec)}
    result = await pool.call_tool("time", spec, "get_current_time", {"timezone": "Asia/Tokyo"})

    assert not result.is_error
    assert '"timezone": "Asia/Tokyo"' in result.text()


@pytest.mark.parametrize("transport", ["sse", "streamable_http"])
async def test_server_everything_over_http(pool: McpClientPool, transport: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("everything_sse" if transport == "sse" else "everything_http")
    spec = ServerSpec(transport, url=url)  # type: ignore[arg-type]

    probe = await pool.probe(spec)
    assert probe.ok, probe.error
    assert "echo" in {tool.name for tool in probe.tools}

    result = await pool.call_tool("everything", spec, "echo", {"message": "hello over " + transport})
    assert not result.is_error
    assert "hello over " + transport in result.text()
    image = await pool.call_tool("everything", spec, "get-tiny-image", {})
    assert any(block["type"] == "image" and block["mimeType"] == "image/png" for block in image.content)


async def test_our_server_over_streamable_http_with_a_bearer(pool: McpClientPool, notes_http: str) -> None:
    spec = ServerSpec("streamable_http", url=notes_http, headers={"Authorization": f"Bearer {SECRET}"})

    assert (await pool.call_tool("notes", spec, "add_note", {"text": "over http"})).text() == "noted: over http"


@pytest.mark.parametrize("transport", ["sse", "streamable_http"])
async def test_a_restarted_http_server_is_reconnected(pool: McpClientPool, transport: str) -> None:
    port = free_port()
    command = [PYTHON, NOTES, "--transport", "sse" if transport == "sse" else "streamable-http", "--port", str(port)]
    spec = ServerSpec(transport, url=f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}")  # type: ignore[arg-type]
    async with serving_async(command, port):
        first = await server_pid(pool, "notes", spec)
    async with serving_async(command, port):
        second = await server_pid(pool, "notes", spec)  # the old session is gone: a new one, transparently
    assert second != first


# --- errors ---------------------------------------------------------------------------------------------------------


async def probe_error(pool: McpClientPool, spec: ServerSpec) -> McpError:
    result = await pool.probe(spec)
    assert not result.ok and result.error is not None and result.tools == []
    return result.error


async def test_errors_say_what_went_wrong_without_secrets(pool: McpClientPool, notes_http: str, notes_sse: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    env = {"API_KEY": SECRET}
    complain_and_exit = "import os, sys; print('bad key', os.environ['API_KEY'], file=sys.stderr); sys.exit(3)"
    refused_port = free_port()
    cases = {
        "missing_command": (ServerSpec("stdio", command="no-such-mcp-server", env=env),
                            "command 'no-such-mcp-server' not found"),
        "exited": (ServerSpec("stdio", command=PYTHON, env=env, args=("-c", complain_and_exit)),
                   "the server exited with code 3: bad key [redacted]"),
        "refused": (ServerSpec("streamable_http", url=f"http://127.0.0.1:{refused_port}/mcp",
                               headers={"Authorization": f"Bearer {SECRET}"}),
                    f"connection refused at http://127.0.0.1:{refused_port}/mcp"),
        "refused sse": (ServerSpec("sse", url=f"http://127.0.0.1:{refused_port}/sse", headers={"X-Key": SECRET}),
                        f"connection refused at http://127.0.0.1:{refused_port}/sse"),
        "unauthorized": (ServerSpec("streamable_http", url=notes_http, headers={"Authorization": f"Bearer x{SECRET}"}),
                         "401 Unauthorized"),
        "unauthorized sse": (ServerSpec("sse", url=notes_sse, headers={"Authorization": f"Bearer x{SECRET}"}),
                             "401 Unauthorized"),
        "not_found": (ServerSpec("streamable_http", url=notes_http.replace("/mcp", "/nothing"),
                                 headers={"Authorization": f"Bearer {SECRET}"}),
                      f"nothing at {notes_http.replace('/mcp', '/nothing')} (404 Not Found)"),
    }  # fmt: skip
    for name, (spec, message) in cases.items():
        error = await probe_error(pool, spec)
        assert (error.kind, error.message) == (name.split()[0], message), name
        assert SECRET not in repr(error) and SECRET not in repr(spec)

    assert SECRET not in caplog.text
    assert "no-such-mcp-server" in caplog.text  # the failures were logged, just not the secrets


@pytest.mark.parametrize("transport", ["sse", "streamable_http"])
async def test_a_server_that_never_answers_times_out_within_the_deadline(silent_port: int, transport: str) -> None:
    pool = McpClientPool(connect_timeout_s=1)
    path = "sse" if transport == "sse" else "mcp"
    spec = ServerSpec(transport, url=f"http://127.0.0.1:{silent_port}/{path}")  # type: ignore[arg-type]
    try:
        started = time.monotonic()
        error = await probe_error(pool, spec)
        probe_took = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(McpError) as caught:
            await pool.call_tool("silent", spec, "echo", {})
        call_took = time.monotonic() - started
    finally:
        await pool.stop()

    assert (error.kind, error.message) == ("timeout", "no answer within 1 s")
    assert (caught.value.kind, caught.value.message) == ("timeout", "no answer within 1 s")
    assert 1 <= probe_took < 2 and 1 <= call_took < 2  # the deadline, not a fixed wait


async def test_a_silent_stdio_server_times_out_and_is_killed(tmp_path: Path) -> None:
    pool = McpClientPool(connect_timeout_s=1)
    pid_file = tmp_path / "pid"
    script = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    spec = ServerSpec("stdio", command=PYTHON, args=("-c", script, str(pid_file)))
    try:
        started = time.monotonic()
        with pytest.raises(McpError) as caught:
            await pool.call_tool("silent", spec, "echo", {})
        took = time.monotonic() - started
    finally:
        await pool.stop()

    assert (caught.value.kind, caught.value.message) == ("timeout", "no answer within 1 s")
    assert 1 <= took < 2  # the caller does not wait for the stubborn process to be killed; stop() does
    assert gone(int(pid_file.read_text()))


# --- stdio through a launcher ---------------------------------------------------------------------------------------


class PipeStream:
    """A ByteStream over a host subprocess's pipes: what a sandbox launcher would hand over."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def read(self) -> bytes:
        assert self.process.stdout
        return await self.process.stdout.read(65536)

    async def write(self, data: bytes) -> None:
        assert self.process.stdin
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def close(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def exit_message(self) -> str | None:
        code = self.process.returncode
        return None if code is None else f"the sandboxed server exited with code {code}"


class PipeLauncher:
    def __init__(self, *command: str) -> None:
        self.command = command
        self.streams: list[PipeStream] = []

    async def open(self) -> ByteStream:
        process = await asyncio.create_subprocess_exec(*self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.streams.append(PipeStream(process))
        return self.streams[-1]


async def test_stdio_through_a_launcher(pool: McpClientPool) -> None:
    # A banner on stdout before the server starts, as a shell or a pty would print: it is skipped.
    launcher = PipeLauncher("/bin/sh", "-c", f"echo 'welcome to the sandbox'; exec {PYTHON} {NOTES}")
    spec = ServerSpec("stdio", launcher=launcher)

    probe = await pool.probe(spec)
    assert probe.ok, probe.error
    assert probe.server_name == "notes"
    assert (await pool.call_tool("sandboxed", spec, "add_note", {"text": "inside"})).text() == "noted: inside"
    assert (await pool.call_tool("sandboxed", spec, "list_notes", {})).text() == "inside"

    await pool.stop()
    assert len(launcher.streams) == 2  # the probe's and the session's
    assert all(stream.process.returncode is not None for stream in launcher.streams)


async def test_a_launched_server_that_exits(pool: McpClientPool) -> None:
    launcher = PipeLauncher(PYTHON, "-c", "import sys; sys.exit(4)")
    error = await probe_error(pool, ServerSpec("stdio", launcher=launcher))
    assert (error.kind, error.message) == ("exited", "the sandboxed server exited with code 4")
