#!/usr/bin/python3
"""agent-ui-mcp-bridge: an MCP stdio server that relays every message to a streamable-HTTP MCP endpoint.

Coding agents in a sandbox (Codex, Claude Code) launch MCP servers as subprocesses speaking JSON-RPC on
stdin/stdout; agent-ui's tool server speaks streamable HTTP and is reached through a unix socket mounted into
the sandbox (the sandbox has no network). This script sits between them, standalone and stdlib-only, since the
sandbox image holds nothing but Python's standard library. It is copied into the agents image as
/usr/local/bin/agent-ui-mcp-bridge.

Environment:
  AGENT_UI_MCP_URL      the endpoint, e.g. http://localhost/api/v1/agent/mcp/tool-server/ (required)
  AGENT_UI_MCP_SOCKET   a unix socket path: HTTP goes over it instead of TCP (the URL's host is the Host header)
  AGENT_UI_MCP_KEY      sent as ``Authorization: Bearer ...`` (never printed)
  AGENT_UI_MCP_TIMEOUT  seconds to wait for the server to say anything (default 900: tool calls can be long)

Both protocol eras pass through unchanged in the body: the initialize handshake (``Mcp-Session-Id`` carried
on later requests, ``MCP-Protocol-Version`` once negotiated, the server's GET stream relayed, the session
deleted at the end) and the per-request envelope of 2026-07-28 (the routing headers ``MCP-Protocol-Version``,
``Mcp-Method``, ``Mcp-Name`` and ``Mcp-Param-*`` mirrored from the body; a cancellation closes the request's
response instead of being posted). Whatever goes wrong on the HTTP side becomes a JSON-RPC error answer to the
request it concerns and one line on stderr, so the agent never waits on a request that cannot be answered.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
NAME_BEARING_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
ACCEPT = "application/json, text/event-stream"
# JSON-RPC error codes: the SDK's for a closed connection and a timeout, the spec's, and ours for a refused key.
CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001
UNAUTHORIZED = -32003
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
RECONNECT_ATTEMPTS = 2
RECONNECT_DELAY_S = 1.0
HEADER_SAFE = re.compile(r"^[\x20-\x7E]*$")
BASE64_SENTINEL = re.compile(r"^=\?base64\?.*\?=$")


Opened = tuple[http.client.HTTPConnection, http.client.HTTPResponse]


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket; the host given is only what the Host header says."""

    def __init__(self, path: str, host: str, timeout: float | None) -> None:
        super().__init__(host, timeout=timeout)
        self._socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class HttpFailureError(Exception):
    """The HTTP side failed in a way the agent should be told about: a JSON-RPC error code and a sentence."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode_header_value(value: str) -> str:
    """The SDK's header encoding: printable ASCII as is, anything else as ``=?base64?...?=``."""
    if HEADER_SAFE.fullmatch(value) and value == value.strip() and not BASE64_SENTINEL.fullmatch(value):
        return value
    return f"=?base64?{base64.b64encode(value.encode()).decode('ascii')}?="


def header_map(schema: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """The ``x-mcp-header`` annotations of a tool's input schema, by property path (pure ``properties`` chains,
    as the SDK reads them)."""
    found: dict[tuple[str, ...], str] = {}
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return found
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            continue
        if isinstance(token := sub.get("x-mcp-header"), str):
            found[(*path, name)] = token
        found.update(header_map(sub, (*path, name)))
    return found


def param_headers(headers: dict[tuple[str, ...], str], arguments: Any) -> dict[str, str]:
    """``Mcp-Param-*`` headers mirroring a tools/call's arguments."""
    out: dict[str, str] = {}
    for path, token in headers.items():
        value: Any = arguments
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, str | int | float):
            rendered = str(value)
        else:
            continue
        out[f"Mcp-Param-{token}"] = encode_header_value(rendered)
    return out


def sse_events(response: http.client.HTTPResponse) -> Iterator[dict[str, str]]:
    """Server-sent events as dicts of their fields (``data`` lines joined), until the stream ends."""
    fields: dict[str, str] = {}
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if fields:
                yield fields
            fields = {}
            continue
        if line.startswith(":"):  # a comment: the server's keep-alive
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data" and "data" in fields:
            fields["data"] += "\n" + value
        elif name in ("event", "data", "id", "retry"):
            fields[name] = value


def envelope_version(message: Any) -> str | None:
    """The protocol version a message of the 2026 wire carries in ``params._meta`` (None for the handshake's)."""
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def is_response(message: Any) -> bool:
    return isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message)


def drain(connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
    """Read what is left of an answer nobody needs, then close its connection."""
    try:
        response.read()
    except (OSError, http.client.HTTPException):
        pass
    finally:
        connection.close()


def error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class Bridge:
    """One stdio session relayed to one endpoint."""

    def __init__(self, url: str, *, socket_path: str | None, key: str | None, timeout: float,
                 out: BinaryIO, err: TextIO) -> None:  # fmt: skip
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"AGENT_UI_MCP_URL must be an http(s) URL, not {url!r}")
        self._parts = parts
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._socket_path = socket_path
        self._key = key
        self._timeout = timeout
        self._out = out
        self._err = err
        self._write_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._session_id: str | None = None
        self._negotiated: str | None = None  # the handshake's protocol version
        self._modern: str | None = None  # the last per-request envelope version seen
        self._tool_headers: dict[str, dict[tuple[str, ...], str]] = {}
        # Requests taken from the agent and not yet answered (by their id as JSON): whether each is of the 2026 wire,
        # the connection of those whose POST is in flight (closed to cancel them), those cancelled.
        self._pending: dict[str, bool] = {}
        self._in_flight: dict[str, http.client.HTTPConnection] = {}
        self._cancelled: set[str] = set()
        self._get_stream: threading.Thread | None = None
        self._closing = threading.Event()
        self.where = f"unix socket {socket_path}" if socket_path else f"{parts.scheme}://{parts.netloc}"

    # -- output ------------------------------------------------------------------------------------------------

    def write(self, message: Any) -> None:
        data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        with self._write_lock:
            try:
                self._out.write(data)
                self._out.flush()
            except (BrokenPipeError, ValueError):  # the agent has gone: nothing is left to tell
                self._closing.set()

    def complain(self, text: str) -> None:
        with self._write_lock, contextlib.suppress(BrokenPipeError, ValueError):
            print(f"agent-ui-mcp-bridge: {text}", file=self._err, flush=True)

    # -- HTTP --------------------------------------------------------------------------------------------------

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        host = self._parts.netloc.rpartition("@")[2]
        if self._socket_path:
            return UnixHTTPConnection(self._socket_path, host, timeout)
        if self._parts.scheme == "https":
            return http.client.HTTPSConnection(host, timeout=timeout)
        return http.client.HTTPConnection(host, timeout=timeout)

    def _headers(self, message: Any = None) -> dict[str, str]:
        """What every request to the endpoint carries, and the era's routing headers for ``message``."""
        headers = {"Accept": ACCEPT}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        method = message.get("method") if isinstance(message, dict) else None
        version = envelope_version(message)
        if version is not None and isinstance(method, str):  # the per-request envelope: self-contained
            params = message["params"]
            self._modern = version
            headers["MCP-Protocol-Version"] = version
            if "id" in message:
                headers["Mcp-Method"] = method
                name_key = NAME_BEARING_METHODS.get(method)
                if name_key and isinstance(name := params.get(name_key), str):
                    headers["Mcp-Name"] = encode_header_value(name)
                if method == "tools/call" and isinstance(name := params.get("name"), str):
                    headers.update(param_headers(self._tool_headers.get(name, {}), params.get("arguments") or {}))
            return headers
        if method == "initialize":  # the negotiation: nothing of a former session
            return headers
        with self._state_lock:
            if self._session_id:
                headers["Mcp-Session-Id"] = self._session_id
            if self._negotiated:
                headers["MCP-Protocol-Version"] = self._negotiated
            elif self._modern and not self._session_id:
                headers["MCP-Protocol-Version"] = self._modern
        return headers

    def _open(self, method: str, headers: dict[str, str], body: bytes | None = None, *, timeout: float | None,
              request_key: str | None = None) -> Opened:  # fmt: skip
        """Send one HTTP request; what fails on the way becomes an :class:`HttpFailureError`."""
        connection = self._connection(timeout)
        if request_key is not None:
            with self._state_lock:
                if request_key in self._cancelled:  # cancelled before it was sent: it never is
                    raise HttpFailureError(CONNECTION_CLOSED, "cancelled")
                self._in_flight[request_key] = connection
        try:
            if body is not None:
                headers = {**headers, "Content-Type": "application/json"}
            connection.request(method, self._path, body=body, headers=headers)
            return connection, connection.getresponse()
        except BaseException as exc:
            connection.close()
            failure = self._failure(exc)
            if failure is exc:
                raise
            raise failure from exc

    def _failure(self, exc: BaseException) -> BaseException:
        if isinstance(exc, TimeoutError):
            said = f"no answer from the tool server at {self.where} within {self._timeout:g} s"
            return HttpFailureError(REQUEST_TIMEOUT, said)
        if isinstance(exc, OSError | http.client.HTTPException):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            return HttpFailureError(CONNECTION_CLOSED, f"cannot reach the tool server at {self.where}: {reason}")
        return exc

    # -- messages from the agent -------------------------------------------------------------------------------

    def handle_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            parsed = json.loads(line)
        except ValueError:
            self.complain("a line on stdin is not JSON; it was dropped")
            self.write(error(None, PARSE_ERROR, "Parse error: the line is not JSON"))
            return
        for message in parsed if isinstance(parsed, list) else [parsed]:
            self.handle(message)

    def handle(self, message: Any) -> None:
        if not isinstance(message, dict):
            self.write(error(None, INVALID_REQUEST, "a JSON-RPC message must be an object"))
            return
        if "method" in message and "id" in message:
            with self._state_lock:
                self._pending[json.dumps(message["id"])] = envelope_version(message) is not None
            if message["method"] == "initialize":  # answered before anything else is sent
                self.request(message)
            else:
                threading.Thread(target=self.request, args=(message,), daemon=True).start()
        elif message.get("method") == "notifications/cancelled" and self._abort(message):
            return
        else:  # notifications and answers to the server's requests, in order
            self.send(message)

    def _abort(self, message: dict[str, Any]) -> bool:
        """A cancellation of a per-request-envelope request closes its response instead of being posted (the
        2026 wire has no client-to-server notifications); True when that was done."""
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        key = json.dumps(request_id)
        with self._state_lock:
            if key not in self._pending:  # answered already: on the 2026 wire there is nothing to post
                return self._modern is not None and self._session_id is None
            if not self._pending[key]:  # the handshake's wire: the server is told
                return False
            self._cancelled.add(key)
            connection = self._in_flight.get(key)
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
        return True

    def send(self, message: dict[str, Any]) -> None:
        """A notification or response: posted, answered 202 (nothing to relay)."""
        headers = self._headers(message)
        try:
            connection, response = self._open("POST", headers, json.dumps(message).encode(), timeout=self._timeout)
        except HttpFailureError as exc:
            self.complain(f"{message.get('method') or 'a response'} not delivered: {exc.message}")
            return
        drain(connection, response)
        if response.status in (401, 403):
            self.complain(self._refused(response.status))
        elif response.status >= 300:
            self.complain(f"{message.get('method') or 'a response'} refused: HTTP {response.status}")
        if message.get("method") == "notifications/initialized":
            self._start_get_stream()

    def request(self, message: dict[str, Any]) -> None:
        request_id = message["id"]
        key = json.dumps(request_id)
        modern = envelope_version(message) is not None
        try:
            self._request(message, self._headers(message), key, modern)
        except HttpFailureError as exc:
            if key not in self._cancelled:
                self.complain(f"{message['method']}: {exc.message}")
                self.write(error(request_id, exc.code, exc.message))
        except Exception as exc:  # a bug of ours must still answer the agent
            self.complain(f"{message['method']}: {type(exc).__name__}: {exc}")
            self.write(error(request_id, INTERNAL_ERROR, f"the bridge failed: {type(exc).__name__}"))
        finally:
            with self._state_lock:
                self._pending.pop(key, None)
                self._in_flight.pop(key, None)
                self._cancelled.discard(key)

    def _request(self, message: dict[str, Any], headers: dict[str, str], key: str, modern: bool) -> None:
        body = json.dumps(message).encode()
        connection, response = self._open("POST", headers, body, timeout=self._timeout, request_key=key)
        try:
            self._answer(response, message, key, modern)
        except (OSError, http.client.HTTPException) as exc:
            raise self._failure(exc) from exc
        finally:
            connection.close()

    def _answer(self, response: http.client.HTTPResponse, message: dict[str, Any], key: str, modern: bool) -> None:
        """Relay the answer to a request's POST, whichever way the server gives it."""
        request_id, method, status = message["id"], message["method"], response.status
        content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if status == 202:
            raise HttpFailureError(INVALID_REQUEST, "the tool server answered a request with 202 Accepted")
        if status in (401, 403):
            raise HttpFailureError(UNAUTHORIZED, self._refused(status))
        if 300 <= status < 400:
            said = f"the tool server redirects to {response.getheader('Location')}; use that URL as AGENT_UI_MCP_URL"
            raise HttpFailureError(INVALID_REQUEST, said)
        if status >= 400:
            said = ""
            if content_type == "application/json":
                try:
                    answer = json.loads(response.read())
                except ValueError:
                    answer = None
                problem = answer.get("error") if isinstance(answer, dict) else None
                if isinstance(problem, dict) and isinstance(problem.get("code"), int):  # JSON-RPC: the server's words
                    self._relay({**answer, "id": request_id}, message)
                    return
                if isinstance(problem, dict) and isinstance(problem.get("message"), str):  # agent-ui's error envelope
                    said = f": {problem['message']}"
            if status == 404 and not said:
                if self._session_id is not None and not modern:
                    raise HttpFailureError(INVALID_REQUEST, "Session terminated")
                raise HttpFailureError(
                    METHOD_NOT_FOUND, f"Not Found: nothing answers at {self._path} on the tool server"
                )
            raise HttpFailureError(INTERNAL_ERROR, f"the tool server answered HTTP {status} {response.reason}{said}")
        if method == "initialize" and (session := response.getheader("Mcp-Session-Id")):
            with self._state_lock:
                self._session_id = session
        if content_type == "application/json":
            try:
                answer = json.loads(response.read())
            except ValueError as exc:
                raise HttpFailureError(PARSE_ERROR, "the tool server's answer is not JSON") from exc
            for item in answer if isinstance(answer, list) else [answer]:
                self._relay({**item, "id": request_id} if is_response(item) else item, message)
            return
        if content_type == "text/event-stream":
            self._relay_stream(response, message, key)
            return
        raise HttpFailureError(INVALID_REQUEST, f"the tool server answered with content type {content_type!r}")

    def _relay_stream(self, response: http.client.HTTPResponse, message: dict[str, Any], key: str) -> None:
        """Relay a request's SSE stream until its answer; reconnect with ``Last-Event-ID`` where the server made
        the stream resumable, else answer with an error."""
        last_id: str | None = None
        delay = RECONNECT_DELAY_S
        attempts = 0
        resumed: http.client.HTTPConnection | None = None
        try:
            while True:
                try:
                    for event in sse_events(response):
                        last_id = event.get("id", last_id)
                        if event.get("retry", "").isdigit():
                            delay = int(event["retry"]) / 1000
                        if event.get("event", "message") != "message" or not event.get("data"):
                            continue
                        try:
                            item = json.loads(event["data"])
                        except ValueError:
                            self.complain("an event of the tool server is not JSON; it was dropped")
                            continue
                        if is_response(item):
                            self._relay({**item, "id": message["id"]}, message)
                            return
                        self.write(item)  # the server's notifications and requests on the way
                except (OSError, http.client.HTTPException) as exc:
                    if last_id is None and key not in self._cancelled:
                        raise self._failure(exc) from exc
                if key in self._cancelled:
                    return
                if last_id is None or attempts >= RECONNECT_ATTEMPTS:
                    raise HttpFailureError(CONNECTION_CLOSED, "the tool server's stream ended without an answer")
                attempts += 1
                time.sleep(delay)
                if resumed is not None:
                    resumed.close()
                headers = {**self._headers(), "Last-Event-ID": last_id}
                resumed, response = self._open("GET", headers, timeout=self._timeout, request_key=key)
                if response.status != 200:
                    said = f"the tool server's stream ended without an answer (resuming it: HTTP {response.status})"
                    raise HttpFailureError(CONNECTION_CLOSED, said)
        finally:
            if resumed is not None:
                resumed.close()

    def _relay(self, answer: dict[str, Any], message: dict[str, Any]) -> None:
        """Write the answer to ``message``, noting what later requests need from it."""
        result = answer.get("result")
        if isinstance(result, dict):
            if message["method"] == "initialize" and isinstance(result.get("protocolVersion"), str):
                with self._state_lock:
                    self._negotiated = result["protocolVersion"]
            if message["method"] == "tools/list" and isinstance(result.get("tools"), list):
                for tool in result["tools"]:
                    if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                        self._tool_headers[tool["name"]] = header_map(tool.get("inputSchema"))
        self.write(answer)

    def _refused(self, status: int) -> str:
        what = "refused the key" if self._key else "wants a key (AGENT_UI_MCP_KEY is not set)"
        return f"unauthorized: the tool server at {self.where} {what} (HTTP {status})"

    # -- the server's own stream -------------------------------------------------------------------------------

    def _start_get_stream(self) -> None:
        with self._state_lock:
            if self._get_stream is not None or self._session_id is None:
                return
            self._get_stream = threading.Thread(target=self._listen, daemon=True)
        self._get_stream.start()

    def _listen(self) -> None:
        """Relay what the server sends outside any request (list changes, its own requests) over the session's
        GET stream, reconnecting a few times; a server without one (405) is fine."""
        last_id: str | None = None
        failures = 0
        while not self._closing.is_set() and failures < RECONNECT_ATTEMPTS:
            headers = self._headers()
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                connection, response = self._open("GET", headers, timeout=None)
            except HttpFailureError:
                failures += 1
                time.sleep(RECONNECT_DELAY_S)
                continue
            try:
                if response.status != 200:  # 405: the server keeps no such stream
                    return
                for event in sse_events(response):
                    failures = 0
                    last_id = event.get("id", last_id)
                    if event.get("event", "message") == "message" and event.get("data"):
                        try:
                            self.write(json.loads(event["data"]))
                        except ValueError:
                            self.complain("an event of the tool server is not JSON; it was dropped")
                failures += 1  # ended: the session is gone, or the server restarts
            except (OSError, http.client.HTTPException):
                failures += 1
            finally:
                connection.close()
            time.sleep(RECONNECT_DELAY_S)

    def close(self) -> None:
        """The agent closed stdin: end the session on the server (best effort, briefly)."""
        self._closing.set()
        if self._session_id is None:
            return
        try:
            connection, response = self._open("DELETE", self._headers(), timeout=5)
        except HttpFailureError:
            return
        drain(connection, response)


def main() -> int:
    url = os.environ.get("AGENT_UI_MCP_URL")
    if not url:
        print("agent-ui-mcp-bridge: AGENT_UI_MCP_URL is not set", file=sys.stderr)
        return 2
    try:
        timeout = float(os.environ.get("AGENT_UI_MCP_TIMEOUT") or 900)
        bridge = Bridge(url, socket_path=os.environ.get("AGENT_UI_MCP_SOCKET") or None,
                        key=os.environ.get("AGENT_UI_MCP_KEY") or None, timeout=timeout,
                        out=sys.stdout.buffer, err=sys.stderr)  # fmt: skip
    except ValueError as exc:
        print(f"agent-ui-mcp-bridge: {exc}", file=sys.stderr)
        return 2
    try:
        for line in sys.stdin.buffer:
            bridge.handle_line(line)
    except KeyboardInterrupt:
        pass
    bridge.close()
    return 0


if __name__ == "__main__":
    code = main()
    with contextlib.suppress(BrokenPipeError, ValueError):
        sys.stdout.flush()
    os._exit(code)  # without waiting on the threads still reading a stream
