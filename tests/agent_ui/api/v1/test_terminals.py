"""Terminals in sandboxes over the API: REST to open, list and close them, a WebSocket for the bytes, on the real
Docker engine and on bubblewrap, served by a real uvicorn (nothing mocked)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live_server import live_server

SANDBOXES = "/api/v1/agent/sandboxes"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BOTH_BACKENDS = pytest.mark.parametrize("sandbox_settings", [{"backend": "docker"}, {"backend": "local"}],
                                        indirect=True)  # fmt: skip
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.fixture
def sandbox_settings(request: pytest.FixtureRequest, docker_engine: str) -> dict:  # type: ignore[type-arg]
    changes = getattr(request, "param", None) or {}
    return {
        "backend": "local", "docker_host": docker_engine, "max_live_per_user": 2, "default_memory_mb": 256,
        "warm_pool": {"docker": 0, "local": 0}, **changes,
    }  # fmt: skip


class Screen:
    """A terminal's output as text (escape sequences and carriage returns dropped), read until a pattern."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen = b""
        self.frames: list[dict] = []  # type: ignore[type-arg]

    async def until(self, pattern: str, timeout: float = 20) -> str:
        regex = re.compile(pattern.encode())
        async with asyncio.timeout(timeout):
            while not regex.search(ANSI.sub(b"", self.seen)):
                message = await self.socket.recv()
                if isinstance(message, bytes):
                    self.seen += message
                else:
                    self.frames.append(json.loads(message))
        return ANSI.sub(b"", self.seen).decode(errors="replace")

    async def run(self, line: str, expect: str) -> str:
        self.seen = b""
        await self.socket.send(line.encode() + b"\n")
        return await self.until(expect)


async def sandbox_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post(SANDBOXES, json={}, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def open_terminal(client: httpx.AsyncClient, headers: dict[str, str], sandbox_id: str, **body: object) -> dict:  # type: ignore[type-arg]
    opened = await client.post(f"{SANDBOXES}/{sandbox_id}/terminals", json=body, headers=headers)
    assert opened.status_code == 201, opened.text
    return opened.json()


def socket_url(served: str, sandbox_id: str, terminal_id: str) -> str:
    return f"ws://{served}{SANDBOXES}/{sandbox_id}/terminals/{terminal_id}"


@SQLITE_ONLY
@BOTH_BACKENDS
async def test_a_shell_keeps_its_state_and_reaches_what_commands_started(  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient, make_account, served: str
) -> None:
    account = await make_account()
    sandbox_id = await sandbox_of(client, account.headers)
    terminal = await open_terminal(client, account.headers, sandbox_id, rows=24, cols=80)
    assert terminal["status"] == "running" and terminal["shell"] == "sh"

    async with connect(socket_url(served, sandbox_id, terminal["id"]), additional_headers=account.headers) as ws:
        screen = Screen(ws)
        await screen.until(r"\$ $")
        await screen.run("cd /tmp && pwd", r"\n/tmp\n")
        assert "\n/tmp\n" in await screen.run("pwd", r"\n/tmp\n")  # a second command: the directory is kept
        await screen.run("export X=1; echo x=$X", r"\nx=1\n")
        await screen.run("python3", r">>> $")
        await screen.run("6*7", r"\n42\n>>> $")
        await screen.run("exit()", r"\$ $")
        await ws.send(b"sleep 100\n")
        await asyncio.sleep(0.3)  # let sleep start: a Ctrl-C typed earlier would go to the shell
        screen.seen = b""
        await ws.send(b"\x03")
        await screen.run("echo after-$((20+1))", r"\nafter-21\n")  # Ctrl-C gave the prompt back
        await ws.send(json.dumps({"type": "resize", "rows": 30, "cols": 100}))
        await screen.run("stty size", r"\n30 100\n")

        # A server started by one command answers the next, and the terminal, and the other way round.
        started = await client.post(f"{SANDBOXES}/{sandbox_id}/exec", headers=account.headers, json={
            "command": "python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 & echo started"})  # fmt: skip
        assert started.json()["stdout"] == "started\n"
        fetch = ("python3 -c \"import time,urllib.request as u\nfor _ in range(100):\n try: print('status', "
                 "u.urlopen('http://127.0.0.1:{port}/').status); break\n except OSError: time.sleep(0.1)\"")
        answered = await client.post(f"{SANDBOXES}/{sandbox_id}/exec", headers=account.headers,
                                     json={"command": fetch.format(port=8765)})  # fmt: skip
        assert answered.json()["stdout"] == "status 200\n"
        await screen.run("python3 -c \"import urllib.request as u; print('tty', u.urlopen('http://127.0.0.1:8765/')"
                         ".status)\"", r"\ntty 200\n")  # fmt: skip
        await screen.run("python3 -m http.server 8766 --bind 127.0.0.1 >/dev/null 2>&1 &", r"\$ $")
        answered = await client.post(f"{SANDBOXES}/{sandbox_id}/exec", headers=account.headers,
                                     json={"command": fetch.format(port=8766)})  # fmt: skip
        assert answered.json()["stdout"] == "status 200\n"

        # The home is in the workspace: a tool's config file is there for the next terminal and in the files.
        await screen.run("mkdir -p ~/.config && echo kept > ~/.config/tool.toml && echo $HOME", r"/home/sandbox\n")
    listed = await client.get(f"{SANDBOXES}/{sandbox_id}/files", params={"path": ".home/.config/tool.toml"},
                              headers=account.headers)  # fmt: skip
    assert listed.status_code == 200 and listed.content == b"kept\n"


@SQLITE_ONLY
@BOTH_BACKENDS
async def test_a_reattach_shows_the_scrollback_and_closing_ends_it(  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient, make_account, served: str
) -> None:
    account = await make_account()
    sandbox_id = await sandbox_of(client, account.headers)
    terminal = await open_terminal(client, account.headers, sandbox_id)
    url = socket_url(served, sandbox_id, terminal["id"])
    async with connect(url, additional_headers=account.headers) as ws:
        await Screen(ws).run("echo marker-$((6*7))", r"\nmarker-42\n")
    async with connect(url, additional_headers=account.headers) as ws:
        screen = Screen(ws)
        await screen.until(r"echo marker-\$\(\(6\*7\)\)\nmarker-42\n")  # what was there, before anything new
        listed = (await client.get(f"{SANDBOXES}/{sandbox_id}/terminals", headers=account.headers)).json()
        assert [(t["id"], t["attached"]) for t in listed] == [(terminal["id"], 1)]
        closed = await client.delete(f"{SANDBOXES}/{sandbox_id}/terminals/{terminal['id']}", headers=account.headers)
        assert closed.status_code == 204
        with pytest.raises(ConnectionClosed) as ended:
            await screen.until("never")
        assert ended.value.rcvd is not None and ended.value.rcvd.code == 1000
        assert screen.frames[-1]["type"] == "exit" and screen.frames[-1]["reason"] == "closed"
    gone = await client.get(f"{SANDBOXES}/{sandbox_id}/terminals/{terminal['id']}", headers=account.headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "terminal_not_found"


async def refusal(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """A refused handshake's HTTP status and error code (it is never accepted)."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"{}").get("error", {}).get("code", "")


@SQLITE_ONLY
async def test_others_unknown_and_anonymous_sockets_are_refused(  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient, make_account, served: str
) -> None:
    owner, other = await make_account(), await make_account()
    sandbox_id = await sandbox_of(client, owner.headers)
    terminal = await open_terminal(client, owner.headers, sandbox_id)
    url = socket_url(served, sandbox_id, terminal["id"])
    assert await refusal(url, other.headers) == (404, "not_found")  # another's terminal does not exist for them
    assert await refusal(url, {}) == (401, "not_authenticated")
    assert await refusal(socket_url(served, sandbox_id, "term_nope"), owner.headers) == (404, "terminal_not_found")
    assert await refusal(socket_url(served, "sbx_nope", terminal["id"]), owner.headers) == (404, "not_found")
    assert (await client.get(f"{SANDBOXES}/{sandbox_id}/terminals", headers=other.headers)).status_code == 404
    deleted = await client.delete(f"{SANDBOXES}/{sandbox_id}/terminals/{terminal['id']}", headers=other.headers)
    assert deleted.status_code == 404
    # Signed in by cookie from another site's page: the handshake is refused before anything is reached.
    login = await client.post("/api/v1/auth/login", json={"email": owner.email, "password": owner.password})
    cookie = f"agent_ui_session={login.cookies['agent_ui_session']}"
    with pytest.raises(InvalidStatus) as cross_site:
        async with connect(url, additional_headers={"Cookie": cookie, "Origin": "http://evil.example"}):
            pass
    assert cross_site.value.response.status_code == 403
    async with connect(url, additional_headers={"Cookie": cookie, "Origin": f"http://{served}"}) as ws:
        await Screen(ws).run("echo same-site", r"\nsame-site\n")
    # A key without the sandboxes scope.
    key = await client.post("/api/v1/agent/api-keys", headers=owner.headers, json={"name": "chat", "scopes": ["chat"]})
    assert key.status_code == 201, key.text
    assert await refusal(url, {"Authorization": f"Bearer {key.json()['api_key']}"}) == (403, "insufficient_scope")


@SQLITE_ONLY
@pytest.mark.parametrize("sandbox_settings", [{"max_terminals": 2}], indirect=True)
async def test_bad_input_too_many_terminals_and_a_destroyed_sandbox(  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient, make_account, served: str
) -> None:
    account = await make_account()
    sandbox_id = await sandbox_of(client, account.headers)
    base = f"{SANDBOXES}/{sandbox_id}/terminals"
    for body in ({"rows": 0}, {"cols": 100_000}, {"shell": "sh; rm -rf /"}, {"args": ["a\x00b"]}, {"nope": 1}):
        refused = await client.post(base, json=body, headers=account.headers)
        assert refused.status_code == 422, body
    assert (await client.post(f"{SANDBOXES}/sbx_nope/terminals", json={}, headers=account.headers)).status_code == 404
    first = await open_terminal(client, account.headers, sandbox_id)
    await open_terminal(client, account.headers, sandbox_id, shell="python3", args=["-q"])
    third = await client.post(base, json={}, headers=account.headers)
    assert third.status_code == 429 and third.json()["error"]["code"] == "terminal_quota"

    async with connect(socket_url(served, sandbox_id, first["id"]), additional_headers=account.headers) as ws:
        screen = Screen(ws)
        await screen.until(r"\$ $")
        await ws.send("not json")
        await ws.send(json.dumps({"type": "resize", "rows": 1, "cols": 5}))
        async with asyncio.timeout(10):
            while len([f for f in screen.frames if f["type"] == "error"]) < 2:
                message = await ws.recv()
                if isinstance(message, str):
                    screen.frames.append(json.loads(message))
        destroyed = await client.delete(f"{SANDBOXES}/{sandbox_id}", headers=account.headers)
        assert destroyed.status_code == 204
        with pytest.raises(ConnectionClosed) as ended:
            await screen.until("never")
            await ws.send(b"echo too late\n")
        assert ended.value.rcvd is not None and ended.value.rcvd.code == 1000
        assert "destroyed" in ended.value.rcvd.reason


@SQLITE_ONLY
@pytest.mark.parametrize("sandbox_settings", [{"terminal_idle_s": 0.4}], indirect=True)
async def test_an_idle_terminal_is_closed_but_a_watched_one_is_not(  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient, make_account, served: str
) -> None:
    account = await make_account()
    sandbox_id = await sandbox_of(client, account.headers)
    watched = await open_terminal(client, account.headers, sandbox_id)
    idle = await open_terminal(client, account.headers, sandbox_id)
    async with connect(socket_url(served, sandbox_id, watched["id"]), additional_headers=account.headers) as ws:
        async with asyncio.timeout(10):
            while True:
                listed = (await client.get(f"{SANDBOXES}/{sandbox_id}/terminals", headers=account.headers)).json()
                if idle["id"] not in [t["id"] for t in listed]:
                    break
                await asyncio.sleep(0.1)
        assert [t["id"] for t in listed] == [watched["id"]]
        await Screen(ws).run("echo still-here", r"\nstill-here\n")


def processes_running(needle: bytes) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if needle in Path(entry.path, "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_kill_9_leaves_no_terminal_or_sandbox_process_behind(tmp_path: Path) -> None:
    """The local backend's processes die with the app (each sandbox's init dies with its parent)."""
    env = {"AGENT_UI_SANDBOX__BACKEND": "local", "AGENT_UI_LLM__LOCAL__ENABLED": "false"}
    account = {"email": "orphans@example.com", "password": "correct horse battery"}
    with live_server(tmp_path / "data", extra_env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            await http.post("/api/v1/auth/register", json=account)
            login = await http.post("/api/v1/auth/login", json=account)
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            http.cookies.clear()
            sandbox_id = await sandbox_of(http, headers)
            await open_terminal(http, headers, sandbox_id, shell="sleep", args=["4242"])
            ran = await http.post(f"{SANDBOXES}/{sandbox_id}/exec", headers=headers,
                                  json={"command": "sleep 4343 >/dev/null 2>&1 & echo ok"})  # fmt: skip
            assert ran.json()["stdout"] == "ok\n"
        assert processes_running(b"sleep\x004242") and processes_running(b"sleep\x004343")
        os.kill(server.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            while processes_running(b"sleep\x004242") or processes_running(b"sleep\x004343"):
                await asyncio.sleep(0.05)
