"""MCP client pool: one live session per server key, over stdio, SSE or streamable HTTP.

Why it looks like this:
- The SDK's sessions run on anyio task groups that must be entered and left by the same task, so every session
  has an *owner task* that holds the ``async with Client(...)`` for the session's whole life. Callers run their
  requests from their own tasks (the SDK's dispatcher correlates responses through memory streams), so a caller
  that is cancelled (a chat stop) cancels only its request: the SDK sends ``notifications/cancelled`` and the
  session stays up.
- Stdio goes through our own newline-delimited JSON-RPC transport over a ``ByteStream``: either a host process we
  start (so we know its pid, its exit code and the last line it wrote to stderr) or a ``StreamLauncher`` that
  reaches a server elsewhere (a sandbox). One code path for both.
- Every wait has a deadline. Connect failures arrive from the SDK as nested exception groups and generic errors,
  so they are classified here into one ``McpError`` with a short sentence; HTTP statuses are captured with an
  httpx event hook because a 401 otherwise surfaces only as a generic error.
- Secrets (env values, header values) never reach a message: every message is built from our own words plus the
  URL without its query or user info, and is passed through a redactor as a last line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.abc
import httpx2
import mcp_types
from mcp import Client
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import get_default_environment
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from services.errors import UpstreamUnavailableError

logger = logging.getLogger(__name__)

Transport = Literal["stdio", "sse", "streamable_http"]
ErrorKind = Literal["missing_command", "exited", "refused", "unauthorized", "timeout", "protocol", "not_found"]

CLIENT_INFO = mcp_types.Implementation(name="agent-ui", version="0.1.0")
# Stdio shutdown, as the MCP spec orders it: close stdin, wait, SIGTERM the process group, wait, SIGKILL.
_EXIT_GRACE_S = 2.0
_TERM_GRACE_S = 2.0
_KILL_REAP_S = 2.0
_STDERR_LINES = 20
_SSE_READ_TIMEOUT_S = 300.0  # an SSE stream silent for this long is dropped (and reconnected on the next call)
_MAX_TOOL_PAGES = 100
_CLOSE_WAIT_S = 15.0  # longest a close waits for an owner task (the stdio shutdown above is ~6 s at worst)
_MIN_SECRET_LEN = 4

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------------------------------


class ByteStream(Protocol):
    """A byte stream to a stdio server that runs elsewhere (e.g. in a sandbox through a pty put in raw mode).

    Newline-delimited JSON-RPC travels over it; lines that are not JSON objects (a shell's echo) are skipped.
    A stream may also offer ``exit_message() -> str | None`` (e.g. "the server exited with code 3") that the pool
    uses when the stream ends; it must not contain secrets.
    """

    async def read(self) -> bytes:
        """The next bytes the server wrote; ``b""`` at the end."""
        ...

    async def write(self, data: bytes) -> None:
        """Send bytes to the server's stdin; raises an OSError or anyio resource error when it is gone."""
        ...

    async def close(self) -> None:
        """Idempotent; ends the process."""
        ...


class StreamLauncher(Protocol):
    """Opens a ``ByteStream`` to a fresh server process. May raise ``McpError`` to say what went wrong."""

    async def open(self) -> ByteStream: ...


@dataclass(frozen=True)
class ServerSpec:
    """How to reach one MCP server. ``env`` and ``headers`` hold secrets: they are left out of ``repr``.

    The pool keeps a session while the spec it gets stays equal, so give one server the same launcher object
    each time (or a launcher with ``__eq__``): a new launcher reads as an edited server and reconnects.
    """

    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    launcher: StreamLauncher | None = None

    def __post_init__(self) -> None:
        if self.transport == "stdio" and not self.command and self.launcher is None:
            raise ValueError("a stdio server needs a command or a launcher")
        if self.transport in ("sse", "streamable_http") and not self.url:
            raise ValueError(f"a {self.transport} server needs a url")
        if self.transport not in ("stdio", "sse", "streamable_http"):
            raise ValueError(f"unknown transport {self.transport!r}")

    def __hash__(self) -> int:
        return hash(
            (
                self.transport,
                self.command,
                self.args,
                tuple(sorted(self.env.items())),
                self.cwd,
                self.url,
                tuple(sorted(self.headers.items())),
            )
        )

    def secrets(self) -> list[str]:
        """Values that must never appear in a message or a log line."""
        values: set[str] = set()
        for value in (*self.env.values(), *self.headers.values()):
            values.add(value)
            values.update(part for part in value.split() if len(part) >= _MIN_SECRET_LEN)
        if self.url:
            parts = urlsplit(self.url)
            values.update(v for v in (parts.password, parts.query) if v)
        return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)

    def where(self) -> str:
        """The address to name in messages: the URL without user info or query, or the command."""
        if self.url:
            parts = urlsplit(self.url)
            host = parts.hostname or ""
            netloc = f"[{host}]" if ":" in host else host
            if parts.port:
                netloc += f":{parts.port}"
            return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return f"command '{self.command}'" if self.command else "the launcher"


@dataclass(frozen=True)
class McpTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    title: str | None = None


@dataclass(frozen=True)
class CallResult:
    content: list[dict[str, Any]]  # MCP content blocks as plain JSON (text, image with mimeType, resource...)
    is_error: bool
    structured: dict[str, Any] | None

    def text(self) -> str:
        """The text blocks joined: what a chat model reads."""
        return "\n".join(block["text"] for block in self.content if block.get("type") == "text" and "text" in block)


class McpError(UpstreamUnavailableError):
    """An MCP server could not be reached or did not speak MCP. ``kind`` says why; the message is one short
    sentence without secrets."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message, details={"kind": kind})
        self.kind: ErrorKind = kind

    def __repr__(self) -> str:
        return f"McpError({self.kind!r}, {self.message!r})"


class _NotSentError(McpError):
    """The session was already gone, so the request never left: safe to retry on a new session."""


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float  # connect, initialize and list the tools
    tools: list[McpTool]
    server_name: str | None
    server_version: str | None
    error: McpError | None


# --------------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:g}"


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def _error(spec: ServerSpec, kind: ErrorKind, message: str) -> McpError:
    return McpError(kind, _redact(message, spec.secrets()))


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside nested exception groups, depth first."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is in the exception's cause chain (httpx wraps the OSError three levels deep)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


# --------------------------------------------------------------------------------------------------------------------
# Stdio: a host process as a ByteStream, and the JSON-RPC transport over any ByteStream
# --------------------------------------------------------------------------------------------------------------------


class _HostProcess:
    """A server started on this host in its own process group; its stderr is kept as a short tail."""

    def __init__(self, process: anyio.abc.Process, secrets: list[str]) -> None:
        self._process = process
        self._secrets = secrets
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._stderr_done = anyio.Event()
        self._closed = False
        self._close_done = anyio.Event()

    @classmethod
    async def spawn(cls, spec: ServerSpec) -> _HostProcess:
        assert spec.command
        env = get_default_environment() | dict(spec.env)  # like the SDK: a few safe variables, then the spec's
        try:
            process = await anyio.open_process(
                [spec.command, *spec.args], env=env, cwd=spec.cwd, start_new_session=True
            )
        except FileNotFoundError:
            if spec.cwd and not await anyio.Path(spec.cwd).is_dir():
                raise _error(spec, "missing_command", f"the working directory '{spec.cwd}' does not exist") from None
            raise _error(spec, "missing_command", f"command '{spec.command}' not found") from None
        except PermissionError:
            raise _error(spec, "missing_command", f"command '{spec.command}' is not executable") from None
        except OSError as exc:
            raise _error(
                spec, "missing_command", f"command '{spec.command}' could not start ({exc.strerror})"
            ) from None
        return cls(process, spec.secrets())

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def read(self) -> bytes:
        assert self._process.stdout
        try:
            return await self._process.stdout.receive(65536)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        assert self._process.stdin
        await self._process.stdin.send(data)

    async def drain_stderr(self) -> None:
        """Keep the last lines of stderr (for the exit message) and never let the pipe fill up."""
        assert self._process.stderr
        buffer = b""
        try:
            with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                while True:
                    buffer += await self._process.stderr.receive(65536)
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if text := line.decode(errors="replace").strip():
                            self._stderr.append(text[:300])
                    buffer = buffer[-4096:]
            if text := buffer.decode(errors="replace").strip():
                self._stderr.append(text[:300])
        finally:
            self._stderr_done.set()

    async def wait_exit(self, within_s: float) -> bool:
        """Whether the process ended within ``within_s`` (polled: ``wait()`` also waits for inherited pipes)."""
        deadline = anyio.current_time() + within_s
        while self._process.returncode is None:
            if anyio.current_time() >= deadline:
                return False
            await anyio.sleep(0.01)
        return True

    def exit_message(self) -> str | None:
        code = self._process.returncode
        if code is None:
            return None
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"the server was killed by {signal.Signals(-code).name}"
            return f"the server was killed by signal {-code}"
        message = f"the server exited with code {code}"
        if self._stderr:
            message += f": {self._stderr[-1]}"
        return _redact(message, self._secrets)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, sig)

    async def close(self) -> None:
        if self._closed:
            await self._close_done.wait()
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                if self._process.stdin is not None:
                    with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await self._process.stdin.aclose()
                if not await self.wait_exit(_EXIT_GRACE_S):
                    self._signal_group(signal.SIGTERM)
                    if not await self.wait_exit(_TERM_GRACE_S):
                        self._signal_group(signal.SIGKILL)
                        if not await self.wait_exit(_KILL_REAP_S):
                            logger.warning("MCP server process %d survived SIGKILL", self._process.pid)
                # Whatever the server left behind in its group goes too: no orphans.
                self._signal_group(signal.SIGKILL)
                with anyio.move_on_after(0.5):  # let the stderr tail catch the server's last words
                    await self._stderr_done.wait()
                for pipe in (self._process.stdout, self._process.stderr):
                    if pipe is not None:
                        with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                            await pipe.aclose()
            finally:
                self._close_done.set()


@asynccontextmanager
async def _byte_stream_transport(
    stream: ByteStream, extra: Callable[[], Any] | None = None
) -> AsyncIterator[TransportStreams]:
    """Newline-delimited JSON-RPC over ``stream``, as the SDK's transport pair of memory streams."""
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](0)

    async def reader() -> None:
        buffer = bytearray()
        try:
            async with read_send:
                while chunk := await stream.read():
                    scan_from = len(buffer)
                    buffer += chunk
                    while (end := buffer.find(b"\n", scan_from)) >= 0:
                        line = bytes(buffer[:end]).strip()
                        del buffer[: end + 1]
                        scan_from = 0
                        if not line.startswith(b"{"):
                            continue  # not JSON-RPC: a pty's echo or a banner
                        try:
                            message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                        except ValueError:
                            logger.debug("skipped a line from an MCP server that is not JSON-RPC (%d bytes)", len(line))
                            continue
                        await read_send.send(SessionMessage(message))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass

    async def writer() -> None:
        try:
            async with write_recv:
                async for item in write_recv:
                    line = item.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await stream.write(line.encode())
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await read_send.aclose()  # the server is gone: let the session see the end instead of hanging

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            if extra is not None:
                tg.start_soon(extra)
            try:
                yield read_recv, write_send
            finally:
                with anyio.CancelScope(shield=True):
                    write_send.close()
                    read_recv.close()
                    await stream.close()
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await stream.close()


# --------------------------------------------------------------------------------------------------------------------
# One connection: its owner task, its state, its requests
# --------------------------------------------------------------------------------------------------------------------


class _WatchedReadStream:
    """The transport's read stream, telling the connection when it ends (process exited, connection dropped)."""

    def __init__(self, inner: Any, on_end: Callable[[], None], on_exception: Callable[[Exception], None]) -> None:
        self._inner = inner
        self._on_end = on_end
        self._on_exception = on_exception

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item: SessionMessage | Exception = await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise
        if isinstance(item, Exception):
            self._on_exception(item)
        return item

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _Connection:
    """One MCP session and the task that owns it (enters and leaves the SDK's context managers)."""

    def __init__(
        self,
        spec: ServerSpec,
        *,
        connect_timeout_s: float,
        idle_s: float,
        on_exit: Callable[[_Connection], None] | None = None,
    ) -> None:
        self.spec = spec
        self._connect_timeout_s = connect_timeout_s
        self._idle_s = idle_s
        self._on_exit = on_exit
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._connect_deadline = math.inf
        self._ready = anyio.Event()
        self._done = anyio.Event()
        self._wake = anyio.Event()
        self._closing = False
        self._lost = False
        self._in_flight = 0
        self._last_used = time.monotonic()
        self._process: _HostProcess | None = None
        self._stream: ByteStream | None = None
        self._http_status: int | None = None
        self._stream_error: Exception | None = None
        self._tools: list[McpTool] | None = None
        self.error: McpError | None = None
        self.server_name: str | None = None
        self.server_version: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._connect_deadline = anyio.current_time() + self._connect_timeout_s
        self._task = asyncio.get_running_loop().create_task(self._own(), name=f"mcp session ({self.spec.transport})")

    @property
    def alive(self) -> bool:
        """Connecting, or connected and not broken or closing."""
        return not self._done.is_set() and not self._lost and not self._closing and self.error is None

    async def wait_ready(self) -> None:
        """Wait for the connect to end; raises the connect's McpError."""
        with anyio.move_on_after(self._connect_deadline - anyio.current_time() + 0.05):
            await self._ready.wait()
        if not self._ready.is_set():  # the owner is unwinding a stuck connect (a process kill): do not wait for it
            self.error = self.error or _error(
                self.spec, "timeout", f"no answer within {_seconds(self._connect_timeout_s)} s"
            )
            self.request_close()
        if self.error is not None:
            raise self.error
        if self._client is None:
            raise self._lost_error()

    def request_close(self) -> None:
        """Ask the owner task to close the session, without waiting."""
        self._closing = True
        self._poke()

    async def close(self) -> None:
        """Close the session and wait (bounded) for its owner task; the stdio process ends."""
        self.request_close()
        if self._task is None:
            return
        with anyio.move_on_after(_CLOSE_WAIT_S, shield=True):
            await self._done.wait()
        if not self._done.is_set():
            logger.warning("an MCP session did not close within %s s; cancelling it", _seconds(_CLOSE_WAIT_S))
            self._task.cancel()

    def _poke(self) -> None:
        self._wake.set()

    def _on_stream_end(self) -> None:
        self._lost = True
        self._poke()

    def _on_stream_exception(self, exc: Exception) -> None:
        self._stream_error = exc

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self._tools = None
        elif isinstance(message, Exception):
            self._stream_error = message
        await anyio.lowlevel.checkpoint()

    async def _own(self) -> None:
        scope = anyio.CancelScope(deadline=self._connect_deadline)
        connected = False
        try:
            with scope:
                client = Client(
                    self._transport(),
                    mode="legacy",
                    cache=None,
                    client_info=CLIENT_INFO,
                    message_handler=self._on_message,
                )
                async with client:
                    scope.deadline = math.inf
                    if scope.cancel_called:  # the deadline struck as the handshake finished
                        raise TimeoutError
                    info = client.server_info
                    self.server_name = info.name if info else None
                    self.server_version = info.version if info else None
                    self._client = client
                    connected = True
                    self._last_used = time.monotonic()
                    self._ready.set()
                    await self._serve()
            if scope.cancelled_caught and not connected:
                self.error = self.error or _error(
                    self.spec, "timeout", f"no answer within {_seconds(self._connect_timeout_s)} s"
                )
        except Exception as exc:  # the SDK raises nested groups of anything; classify them into one McpError
            if not connected:
                self.error = self.error or await self._classify(exc)
                logger.info("MCP connect to %s failed: %s", self.spec.where(), self.error.message)
            else:
                logger.debug("an MCP session ended with %s", type(exc).__name__)
        finally:
            self._client = None
            self._lost = True
            self._ready.set()
            self._done.set()
            if self._on_exit is not None:
                self._on_exit(self)

    async def _serve(self) -> None:
        """Hold the session until it is closed, breaks, or sits idle for ``idle_s``."""
        while not self._closing and not self._lost:
            idle_for = time.monotonic() - self._last_used
            if self._in_flight == 0 and idle_for >= self._idle_s:
                logger.debug("closing an MCP session idle for %.0f s", idle_for)
                self._closing = True  # from now on no request may start on it
                return
            with anyio.move_on_after(max(self._idle_s - idle_for, 0.05) if self._in_flight == 0 else self._idle_s):
                await self._wake.wait()
            self._wake = anyio.Event()

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[TransportStreams]:
        spec = self.spec
        async with AsyncExitStack() as stack:
            if spec.transport == "stdio":
                stream: ByteStream
                if spec.launcher is not None:
                    try:
                        stream = await spec.launcher.open()
                    except McpError:
                        raise
                    except FileNotFoundError:
                        raise _error(spec, "missing_command", "the launcher found no command to run") from None
                    except Exception as exc:
                        raise _error(spec, "exited", f"the launcher failed ({type(exc).__name__})") from None
                    self._stream = stream
                    inner = await stack.enter_async_context(_byte_stream_transport(stream))
                else:
                    self._process = process = await _HostProcess.spawn(spec)
                    self._stream = process
                    inner = await stack.enter_async_context(_byte_stream_transport(process, process.drain_stderr))
            elif spec.transport == "sse":
                assert spec.url
                inner = await stack.enter_async_context(
                    sse_client(
                        spec.url,
                        headers=dict(spec.headers),
                        timeout=self._connect_timeout_s,
                        sse_read_timeout=_SSE_READ_TIMEOUT_S,
                        httpx_client_factory=self._http_client,
                    )
                )
            else:
                assert spec.url
                http = await stack.enter_async_context(
                    self._http_client(
                        headers=dict(spec.headers),
                        timeout=httpx2.Timeout(self._connect_timeout_s, read=_SSE_READ_TIMEOUT_S),
                    )
                )
                inner = await stack.enter_async_context(streamable_http_client(spec.url, http_client=http))
            read_stream, write_stream = inner
            yield _WatchedReadStream(read_stream, self._on_stream_end, self._on_stream_exception), write_stream

    def _http_client(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        """An httpx client that remembers the last error status (a 401 otherwise surfaces as a generic error)."""

        async def on_response(response: httpx2.Response) -> None:
            if response.status_code >= 400 and response.status_code != 405:  # 405: no GET stream, which is fine
                self._http_status = response.status_code

        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout or httpx2.Timeout(self._connect_timeout_s),
            auth=auth,
            event_hooks={"response": [on_response]},
        )

    # -- errors ------------------------------------------------------------------------------------------------------

    def _status_error(self, status: int | None) -> McpError | None:
        if status in (401, 403):
            return _error(self.spec, "unauthorized", _status_text(status))
        if status == 404:
            return _error(self.spec, "not_found", f"nothing at {self.spec.where()} (404 Not Found)")
        return None

    async def _exit_message(self) -> str | None:
        if self._process is not None:
            await self._process.wait_exit(1.0)
            return self._process.exit_message()
        describe = getattr(self._stream, "exit_message", None)
        if callable(describe):
            message = describe()
            return message if isinstance(message, str) or message is None else None
        return None

    async def _classify(self, exc: BaseException) -> McpError:
        """One McpError for whatever a connect raised (nested groups, SDK errors, httpx errors)."""
        leaves = _leaves(exc)
        for leaf in leaves:
            if isinstance(leaf, McpError):
                return leaf
        if (status_error := self._status_error(self._http_status)) is not None:
            return status_error
        spec, where = self.spec, self.spec.where()
        timeout = _error(spec, "timeout", f"no answer within {_seconds(self._connect_timeout_s)} s")
        for leaf in [*leaves, *([self._stream_error] if self._stream_error else [])]:
            if isinstance(leaf, httpx2.HTTPStatusError):
                status = leaf.response.status_code
                return self._status_error(status) or _error(spec, "protocol", f"{_status_text(status)} from {where}")
            if isinstance(leaf, httpx2.ConnectTimeout | httpx2.ReadTimeout | httpx2.PoolTimeout | TimeoutError):
                return timeout
            if isinstance(leaf, httpx2.ConnectError | ConnectionRefusedError):
                if _caused_by(leaf, ConnectionRefusedError):
                    return _error(spec, "refused", f"connection refused at {where}")
                return _error(spec, "refused", f"could not connect to {where}")
            if isinstance(leaf, httpx2.TransportError | ConnectionError):
                return _error(spec, "refused", f"the connection to {where} failed")
        return await self._lost_or_protocol(next((leaf for leaf in leaves if isinstance(leaf, MCPError)), None), leaves)

    async def _lost_or_protocol(self, mcp_error: MCPError | None, leaves: list[BaseException]) -> McpError:
        if mcp_error is not None and mcp_error.code != mcp_types.CONNECTION_CLOSED:
            if mcp_error.code == mcp_types.REQUEST_TIMEOUT:
                return _error(self.spec, "timeout", f"no answer within {_seconds(self._connect_timeout_s)} s")
            return _error(self.spec, "protocol", f"the server answered with an error: {mcp_error.message[:200]}")
        if mcp_error is not None or self._lost:
            return await self._lost_error_async()
        if any(isinstance(leaf, ValidationError | ValueError) for leaf in leaves):
            return _error(self.spec, "protocol", "the server's answer is not valid MCP")
        name = type(leaves[0]).__name__ if leaves else "error"
        return _error(self.spec, "protocol", f"the connection failed ({name})")

    def _lost_error(self) -> McpError:
        if self._process is not None and (message := self._process.exit_message()):
            return McpError("exited", message)
        if self.spec.transport == "stdio":
            return _error(self.spec, "exited", "the server closed its output")
        if (status_error := self._status_error(self._http_status)) is not None:
            return status_error
        return _error(self.spec, "refused", f"the connection to {self.spec.where()} was closed")

    async def _lost_error_async(self) -> McpError:
        if message := await self._exit_message():
            return _error(self.spec, "exited", message)
        return self._lost_error()

    # -- requests ----------------------------------------------------------------------------------------------------

    async def _request(self, timeout_s: float, send: Callable[[Client], Any]) -> Any:
        """Run one request under a deadline, translating every failure into McpError."""
        client = self._client
        if client is None or not self.alive:
            lost = await self._lost_error_async()
            raise _NotSentError(lost.kind, lost.message)
        self._in_flight += 1
        try:
            with anyio.fail_after(timeout_s):
                return await send(client)
        except TimeoutError:
            raise _error(self.spec, "timeout", f"no answer within {_seconds(timeout_s)} s") from None
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                self._lost = True
                if self._closing:
                    raise _error(self.spec, "exited", "the session was closed during the call") from None
                raise await self._lost_error_async() from None
            status, self._http_status = self._http_status, None
            if status in (401, 403, 404):  # the session is unusable: the next request starts a new one
                self._lost = True
                if status == 404 and self.spec.transport == "streamable_http":
                    # The server forgot the session (it restarted): it refused the request, so a retry is safe.
                    raise _NotSentError("not_found", "the server no longer knows this session") from None
                raise self._status_error(status) or exc from None
            if exc.code == mcp_types.REQUEST_TIMEOUT:
                raise _error(self.spec, "timeout", f"no answer within {_seconds(timeout_s)} s") from None
            raise _error(self.spec, "protocol", f"the server answered with an error: {exc.message[:200]}") from None
        except ValidationError:
            raise _error(self.spec, "protocol", "the server's answer is not valid MCP") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, RuntimeError):
            self._lost = True
            raise await self._lost_error_async() from None
        finally:
            self._in_flight -= 1
            self._last_used = time.monotonic()
            self._poke()

    async def list_tools(self, timeout_s: float) -> list[McpTool]:
        if self._tools is not None:
            return list(self._tools)

        async def send(client: Client) -> list[McpTool]:
            tools: list[McpTool] = []
            cursor: str | None = None
            for _ in range(_MAX_TOOL_PAGES):
                page = await client.list_tools(cursor=cursor)
                tools.extend(
                    McpTool(
                        name=t.name, description=t.description or "", input_schema=dict(t.input_schema), title=t.title
                    )
                    for t in page.tools
                )
                cursor = page.next_cursor
                if not cursor:
                    break
            return tools

        tools: list[McpTool] = await self._request(timeout_s, send)
        self._tools = tools
        return list(tools)

    async def call_tool(self, name: str, arguments: dict[str, Any], timeout_s: float) -> CallResult:
        async def send(client: Client) -> mcp_types.CallToolResult:
            return await client.call_tool(name, arguments)

        result: mcp_types.CallToolResult = await self._request(timeout_s, send)
        return CallResult(
            content=[block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content],
            is_error=bool(result.is_error),
            structured=dict(result.structured_content) if result.structured_content is not None else None,
        )


# --------------------------------------------------------------------------------------------------------------------
# The pool
# --------------------------------------------------------------------------------------------------------------------


class McpClientPool:
    """Pooled MCP sessions by key (one per configured server), created on first use and reused.

    A broken session (process exited, connection dropped) is replaced on the next call, a session idle for
    ``idle_s`` closes itself, and every wait is bounded. Use from one asyncio event loop.
    """

    def __init__(self, *, connect_timeout_s: float = 10.0, call_timeout_s: float = 60.0, idle_s: float = 300.0) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._call_timeout_s = call_timeout_s
        self._idle_s = idle_s
        self._connections: dict[str, _Connection] = {}
        self._live: set[_Connection] = set()  # every owner task not yet finished, pooled or not: stop() waits for all

    async def probe(self, spec: ServerSpec) -> ProbeResult:
        """Fresh connection: initialize and list the tools, then close. Never raises for a server's fault."""
        started = time.perf_counter()
        connection = self._start(spec, idle_s=math.inf)
        try:
            await connection.wait_ready()
            tools = await connection.list_tools(self._connect_timeout_s)
        except McpError as exc:
            return ProbeResult(
                ok=False,
                latency_ms=(time.perf_counter() - started) * 1000,
                tools=[],
                server_name=connection.server_name,
                server_version=connection.server_version,
                error=exc,
            )
        finally:
            await connection.close()
        return ProbeResult(
            ok=True,
            latency_ms=(time.perf_counter() - started) * 1000,
            tools=tools,
            server_name=connection.server_name,
            server_version=connection.server_version,
            error=None,
        )

    async def list_tools(self, key: str, spec: ServerSpec) -> list[McpTool]:
        """The server's tools through the pooled session under ``key`` (cached until the server says they changed)."""
        return await self._use(key, spec, lambda connection: connection.list_tools(self._call_timeout_s))

    async def call_tool(
        self, key: str, spec: ServerSpec, name: str, arguments: dict[str, Any], *, timeout_s: float | None = None
    ) -> CallResult:
        """Call a tool. Raises McpError for transport and protocol faults; a tool's own failure is
        ``is_error=True``. Cancelling the caller cancels the request on the server and keeps the session."""
        deadline = timeout_s if timeout_s is not None else self._call_timeout_s
        return await self._use(key, spec, lambda connection: connection.call_tool(name, arguments, deadline))

    async def forget(self, key: str) -> None:
        """Close the pooled session under ``key`` (the server was edited or deleted)."""
        connection = self._connections.pop(key, None)
        if connection is not None:
            await connection.close()

    async def stop(self) -> None:
        """Close every session, including ones still connecting or winding down; stdio processes end."""
        self._connections.clear()
        await asyncio.gather(*(connection.close() for connection in list(self._live)), return_exceptions=True)

    def _start(self, spec: ServerSpec, *, idle_s: float) -> _Connection:
        connection = _Connection(
            spec, connect_timeout_s=self._connect_timeout_s, idle_s=idle_s, on_exit=self._live.discard
        )
        self._live.add(connection)
        connection.start()
        return connection

    async def _use(self, key: str, spec: ServerSpec, request: Callable[[_Connection], Awaitable[_T]]) -> _T:
        """Run a request on the pooled session; a session found broken is replaced once (the request never left)."""
        try:
            return await request(await self._connection(key, spec))
        except _NotSentError:
            return await request(await self._connection(key, spec))

    async def _connection(self, key: str, spec: ServerSpec) -> _Connection:
        connection = self._connections.get(key)
        if connection is None or connection.spec != spec or not connection.alive:
            if connection is not None:
                connection.request_close()  # an edited spec, or a broken session winding down
            connection = self._connections[key] = self._start(spec, idle_s=self._idle_s)
        try:
            await connection.wait_ready()
        except McpError:
            if self._connections.get(key) is connection:
                del self._connections[key]
            raise
        return connection
