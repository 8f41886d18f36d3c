"""Secrets never leak: a workload with known passwords, session tokens and `sk_` keys, then every log record,
every response (body and headers) and the whole database are searched for them.

Each secret may appear in exactly one place: a session token in the login answer that issues it (its
`access_token` and its Set-Cookie), a key in the creation answer that issues it (`api_key`). Nowhere else: not in
another answer, not in a log record (every logger at DEBUG; on a live server also uvicorn's access log), not in
the database (SQLite's raw files with the WAL, or every row of every PostgreSQL table as text), not in any file
the app writes, not in what is sent to the model provider. In process on SQLite and PostgreSQL, and once against
a real uvicorn server.
"""

from __future__ import annotations

import json
import logging
import secrets as random
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from agent_ui.deps import SESSION_COOKIE
from tests.conftest import TEST_SECRET, scripted_llm
from tests.live_server import live_secret, live_server
from tests.sse import parse
from tests.upstream import ScriptedUpstream

NOTES_SERVER = Path(__file__).resolve().parent / "services" / "mcp" / "servers" / "notes_server.py"
REGISTER, LOGIN, LOGOUT, ME = "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/auth/me"
KEYS, CHAT = "/api/v1/agent/api-keys", "/api/v1/agent/chat/stream"
PASSWORDS = {"admin": "admin-pw-Kq7vX2mLp9Rt", "alice": "alice-pw-Zt4kR8wN1Yb", "bob": "bob-pw-Hm3jD6sF0Wc"}
WRONG_PASSWORD = "alice-pw-Zt4kR8wN1Yc"  # one character off alice's: what a typo sends
UNKNOWN_USER_PASSWORD = "nobody-pw-Lg5pS9qA2Xe"
REFUSED_PASSWORD = "refused-pw-Vb8nC1tE6Ju"  # sent with an invalid email: a 422 must not echo it


@dataclass
class Recorder:
    """Every answer the client gets, read in full."""

    responses: list[httpx.Response] = field(default_factory=list)

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def workload(http: httpx.AsyncClient) -> dict[str, str]:
    """Sign up, sign in, fail to sign in, make keys and use every credential; the secrets it used, by name."""
    known = {f"{name}'s password": password for name, password in PASSWORDS.items()}
    known |= {"a wrong password": WRONG_PASSWORD, "an unknown user's password": UNKNOWN_USER_PASSWORD,
              "a refused sign-up's password": REFUSED_PASSWORD}  # fmt: skip
    tokens: dict[str, str] = {}
    for name, password in PASSWORDS.items():  # the admin first: the first user of an instance is its admin
        account = {"email": f"{name}@example.com", "password": password}
        assert (await http.post(REGISTER, json=account)).status_code == 201
        login = await http.post(LOGIN, json=account)
        assert login.status_code == 200, login.text
        tokens[name] = known[f"{name}'s session token"] = login.json()["access_token"]
        assert http.cookies.get(SESSION_COOKIE) == tokens[name]
        http.cookies.clear()

    wrong = await http.post(LOGIN, json={"email": "alice@example.com", "password": WRONG_PASSWORD})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
    unknown = await http.post(LOGIN, json={"email": "nobody@example.com", "password": UNKNOWN_USER_PASSWORD})
    assert unknown.status_code == 401
    refused = await http.post(REGISTER, json={"email": "not an email", "password": REFUSED_PASSWORD})
    assert refused.status_code == 422

    async def new_key(token: str, **body: Any) -> str:
        created = await http.post(KEYS, json=body, headers=bearer(token))
        assert created.status_code == 201, created.text
        return created.json()["api_key"]

    keys = {
        "alice's key": await new_key(tokens["alice"], name="everything"),
        "bob's key": await new_key(tokens["bob"], name="chat and keys", scopes=["chat", "api_keys"]),
        "admin's key": await new_key(tokens["admin"], name="admin", scopes=["admin", "api_keys"]),
    }
    keys["alice's chat key"] = await new_key(keys["alice's key"], name="made by a key", scopes=["chat"])
    known |= keys

    for name, credential in {**keys, **{f"{who}'s session": token for who, token in tokens.items()}}.items():
        me = await http.get(ME, headers=bearer(credential))
        assert me.status_code == 200, (name, me.text)
        listed = await http.get(KEYS, headers=bearer(credential))
        assert listed.status_code == (403 if name in ("alice's chat key",) else 200), (name, listed.text)
        turn = await http.post(CHAT, json={"message": f"hello from {name}"}, headers=bearer(credential))
        expected = 403 if name == "admin's key" else 200
        assert turn.status_code == expected, (name, turn.text)
        if expected == 200:
            assert parse(turn.text)[-1].type == "done", (name, turn.text)
    admin_view = await http.get("/api/v1/admin/users", headers=bearer(keys["admin's key"]))
    assert admin_view.status_code == 200 and len(admin_view.json()["items"]) == 3

    http.cookies.set(SESSION_COOKIE, tokens["bob"])  # the cookie instead of the Bearer header
    assert (await http.get(ME)).json()["email"] == "bob@example.com"
    http.cookies.clear()

    known |= await mcp_workload(http, tokens["admin"], tokens["alice"])

    known["a made-up key"] = "sk_" + random.token_urlsafe(32)
    known["a made-up session token"] = random.token_urlsafe(32)
    for name in ("a made-up key", "a made-up session token"):
        assert (await http.get(ME, headers=bearer(known[name]))).status_code == 401

    bob_keys = (await http.get(KEYS, headers=bearer(tokens["bob"]))).json()["items"]
    assert (await http.delete(f"{KEYS}/{bob_keys[0]['id']}", headers=bearer(tokens["bob"]))).status_code == 204
    assert (await http.get(ME, headers=bearer(keys["bob's key"]))).status_code == 401  # revoked
    assert (await http.post(LOGOUT, headers=bearer(tokens["alice"]))).status_code == 204
    assert (await http.get(ME, headers=bearer(tokens["alice"]))).status_code == 401  # signed out
    return known


async def mcp_workload(http: httpx.AsyncClient, admin: str, alice: str) -> dict[str, str]:
    """MCP credentials: a server's env and headers (one that answers, one that refuses), a Claude Code key and a
    custom entry's token, each stored, listed, tested and used."""
    known = {"an MCP server's env value": "env-" + random.token_hex(12),
             "an MCP server's header value": "hdr-" + random.token_hex(12),
             "alice's Claude Code key": "sk-ant-api03-" + random.token_hex(16),
             "alice's custom token": "tok-" + random.token_hex(12)}  # fmt: skip
    servers = "/api/v1/agent/mcp/servers"
    notes = await http.post(servers, headers=bearer(admin), json={
        "name": "notes", "transport": "stdio", "command": sys.executable, "args": [str(NOTES_SERVER)],
        "env": {"NOTES_TOKEN": known["an MCP server's env value"]}})  # fmt: skip
    assert notes.status_code == 201 and notes.json()["status"] == "ok", notes.text
    remote = await http.post(servers, headers=bearer(admin), json={
        "name": "remote", "transport": "streamable_http", "url": "http://127.0.0.1:9/mcp",
        "headers": {"Authorization": f"Bearer {known['an MCP server' + chr(39) + 's header value']}"}})  # fmt: skip
    assert remote.status_code == 201 and remote.json()["status"] == "error", remote.text
    for server in (notes.json(), remote.json()):
        assert (await http.post(f"{servers}/{server['id']}/test", headers=bearer(admin))).status_code == 200
    called = await http.post(f"{servers}/{notes.json()['id']}/tools/add_note/call", headers=bearer(admin),
                             json={"arguments": {"text": "a note"}})  # fmt: skip
    assert called.status_code == 200, called.text
    failed = await http.post(f"{servers}/{remote.json()['id']}/tools/x/call", headers=bearer(admin), json={})
    assert failed.status_code == 503
    assert len((await http.get(servers, headers=bearer(admin))).json()) == 2
    settings = "/api/v1/agent/user-settings/mcp"
    saved = await http.post(f"{settings}/claude_code", headers=bearer(alice),
                            json={"api_key": known["alice's Claude Code key"]})  # fmt: skip
    assert saved.status_code == 201, saved.text
    custom = await http.post(f"{settings}/custom", headers=bearer(alice), json={
        "name": "tool", "mcp_config": {}, "auth_json": {"token": known["alice's custom token"]}})  # fmt: skip
    assert custom.status_code == 201, custom.text
    assert len((await http.get(settings, headers=bearer(alice))).json()) == 2
    return known


def issued_by(response: httpx.Response) -> str | None:
    """The one secret this answer exists to hand out, if it is such an answer."""
    request = response.request
    if request.method == "POST" and request.url.path == LOGIN and response.status_code == 200:
        return response.json()["access_token"]
    if request.method == "POST" and request.url.path == KEYS and response.status_code == 201:
        return response.json()["api_key"]
    return None


def response_leaks(responses: list[httpx.Response], secrets: dict[str, str]) -> list[str]:
    """Secrets found in answers outside the one place each is issued (which is checked to hold it exactly)."""
    found: list[str] = []
    issuing = 0
    for response in responses:
        body, headers = response.text, list(response.headers.multi_items())
        issued = issued_by(response)
        if issued is not None:
            issuing += 1
            assert issued in secrets.values(), "an issued secret the workload did not keep"
            assert body.count(issued) == 1, "the issuing answer holds its secret once, in its field"
            body = body.replace(issued, "<issued>")
            if response.request.url.path == LOGIN:
                cookies = [value for name, value in headers if name == "set-cookie" and issued in value]
                assert len(cookies) == 1 and cookies[0].startswith(f"{SESSION_COOKIE}={issued};"), headers
                headers = [(name, value.replace(issued, "<issued>")) for name, value in headers]
        text = body + "\n" + "\n".join(f"{name}: {value}" for name, value in headers)
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        found += [f"{where}: {name}" for name, secret in secrets.items() if secret in text]
    assert issuing == 7, f"expected 3 logins and 4 key creations among the answers, saw {issuing}"
    return found


def found_in(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, secret in secrets.items() if secret in text]


def file_leaks(root: Path, secrets: dict[str, str]) -> list[str]:
    """Secrets found in the raw bytes of any file under ``root`` (the SQLite database, its WAL, the data dir)."""
    found: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.relative_to(root)}: {name}" for name, secret in secrets.items() if secret.encode() in data]
    return found


async def postgres_rows(url: str) -> str:
    """Every row of every table in the public schema, as text."""
    connection = await asyncpg.connect(url)
    try:
        tables = [row["tablename"] for row in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]  # fmt: skip
        dump = []
        for table in tables:
            rows = await connection.fetch(f'SELECT t::text AS row FROM "{table}" t')
            dump += [f"{table}: {row['row']}" for row in rows]
        return "\n".join(dump)
    finally:
        await connection.close()


def record_text(record: logging.LogRecord) -> str:
    """All a log record carries: its message, its arguments and extra fields, its traceback."""
    parts = [record.getMessage(), repr(record.__dict__)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


@pytest.fixture
def every_record(app: FastAPI, caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG into caplog (those that do not propagate too), once the app has set its own levels."""
    caplog.set_level(logging.DEBUG)
    own: list[logging.Logger] = []
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
        logger = logging.getLogger(name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            own.append(logger)
    yield caplog
    for logger in own:
        logger.removeHandler(caplog.handler)


async def test_no_secret_in_logs_answers_or_the_database(
    client: httpx.AsyncClient,
    every_record: pytest.LogCaptureFixture,
    database_url: str,
    tmp_path: Path,
    upstream: ScriptedUpstream,
) -> None:
    recorder = Recorder()
    client.event_hooks = {"request": [], "response": [recorder]}
    secrets = await workload(client)
    secrets["the instance secret"] = TEST_SECRET
    assert len(set(secrets.values())) == len(secrets)

    # Each place is searched, and each search shown to see what it should: response_leaks finds every issued
    # secret in the answer that issues it (and asserts it there once), the others find the users' email.
    leaks = {"answers": response_leaks(recorder.responses, secrets)}
    sent = json.dumps(upstream.requests)  # what the model provider was sent
    assert "hello from alice's key" in sent
    leaks["model provider"] = found_in(sent, secrets)
    logged = "\n".join(record_text(record) for record in every_record.records)
    assert "alice@example.com" in logged, "the capture sees request data (SQL parameters at DEBUG)"
    leaks["log records"] = found_in(logged, secrets)
    # The database and every file the app wrote, with the app still running (SQLite's WAL not yet folded in).
    leaks["files"] = file_leaks(tmp_path, secrets)
    if database_url.startswith("postgresql"):
        rows = await postgres_rows(database_url)
        assert "alice@example.com" in rows and "hello from alice's key" in rows  # the dump holds the data
        leaks["database rows"] = found_in(rows, secrets)
    else:
        database = Path(database_url.removeprefix("sqlite+aiosqlite:///"))
        assert database.is_relative_to(tmp_path)
        on_disk = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
        assert b"alice@example.com" in on_disk
    assert leaks == {place: [] for place in leaks}


@pytest.fixture
async def live(tmp_path: Path, upstream: ScriptedUpstream) -> AsyncIterator[tuple[str, Path]]:
    env = {"AGENT_UI_LLM": json.dumps(scripted_llm(upstream)), "AGENT_UI_LOG_LEVEL": "debug",
           "AGENT_UI_SANDBOX__BACKEND": "none"}  # fmt: skip
    with live_server(tmp_path / "live-data", extra_env=env) as server:
        yield server.url, tmp_path


async def test_a_live_server_logs_and_stores_no_secret(live: tuple[str, Path], upstream: ScriptedUpstream) -> None:
    url, root = live
    recorder = Recorder()
    async with httpx.AsyncClient(base_url=url, timeout=30, event_hooks={"response": [recorder]}) as http:
        secrets = await workload(http)
    secrets["the instance secret"] = live_secret(root / "live-data")  # what live_server configures

    (log,) = root.glob("server-*.log")
    text = log.read_text()
    assert '"POST /api/v1/auth/login HTTP/1.1" 200' in text, "uvicorn's access log is in the capture"
    assert "alice@example.com" in text, "and the app's DEBUG records with their data"
    database = b"".join(path.read_bytes() for path in (root / "live-data").glob("agent-ui.db*"))  # and its WAL
    assert b"alice@example.com" in database
    leaks = {
        "answers": response_leaks(recorder.responses, secrets),
        "model provider": found_in(json.dumps(upstream.requests), secrets),
        "files (the server's log, the database, the data dir)": file_leaks(root, secrets),
    }
    assert leaks == {place: [] for place in leaks}
