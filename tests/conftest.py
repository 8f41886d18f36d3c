"""Shared fixtures: a database per test on SQLite and on PostgreSQL, the app, an HTTP client, user factories."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from nicegui.testing.general import nicegui_reset_globals

from services.auth.passwords import Passwords
from services.db import Database
from services.settings import DatabaseSettings, Settings
from tests.upstream import ScriptedUpstream

# main.py builds its module-level app on first import: keep that one's data out of the user's home.
# Each pytest-xdist worker its own (the workers inherit the controller's environment).
if "PYTEST_XDIST_WORKER" in os.environ or "AGENT_UI_DATA_DIR" not in os.environ:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    os.environ["AGENT_UI_DATA_DIR"] = tempfile.mkdtemp(prefix=f"agent-ui-test-{worker}")

# The PostgreSQL server every run uses; a throwaway database is created on it per run.
PG_ADMIN_URL = os.environ.get("AGENT_UI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# One secret per pytest-xdist worker: an instance recovers the sandboxes of dead instances of its deployment (the
# secret's), so two workers sharing one would take each other's live sandboxes for orphans.
TEST_SECRET = f"test-secret-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-" + "x" * 40
DEFAULT_PASSWORD = "correct horse battery"


def cheap_passwords() -> Passwords:
    """Argon2id at its lowest cost, for tests only: the product's default costs ~50 ms and 64 MiB a hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session", autouse=True)
def frozen_heap() -> Iterator[None]:
    """Everything imported once (the app, NiceGUI, the SDKs) moves out of the garbage collector's way: NiceGUI's
    test reset collects twice a test, and a full collection over the whole heap costs ~0.2 s each time."""
    import main  # noqa: F401  (the heavy imports, before the freeze)

    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def _pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this run, dropped at the end."""
    name = f"agent_ui_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def run(sql: str) -> None:
        # Its own thread and loop: this fixture may be first requested from inside a running test loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, admin(sql)).result()

    run(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _truncate_all(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{row["tablename"]}"' for row in tables)
            await connection.execute(f"TRUNCATE {names} CASCADE")
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once for the run: each test starts from a copy instead of migrating anew."""
    path = tmp_path_factory.mktemp("sqlite-template") / "agent-ui.db"

    async def migrate() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}", DatabaseSettings())
        await database.start()
        await database.stop()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, migrate()).result()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every database-touching test runs on both backends: a fresh SQLite file (a copy of the migrated
    template), or the run's PostgreSQL emptied."""
    if request.param == "sqlite":
        target = tmp_path / "agent-ui.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url = request.getfixturevalue("pg_database")
    yield url
    await _truncate_all(url)


@pytest.fixture
def db_settings() -> DatabaseSettings:
    return DatabaseSettings()


@pytest.fixture
async def db(database_url: str, db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    """The database alone, migrated, for service-level tests (both backends)."""
    database = Database(database_url, db_settings)
    await database.start()
    yield database
    await database.stop()


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[ScriptedUpstream]:
    server = ScriptedUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def upstream(upstream_server: ScriptedUpstream) -> Iterator[ScriptedUpstream]:
    """The scripted OpenAI-compatible upstream, with an empty script and request log for this test."""
    upstream_server.script.clear()
    upstream_server.requests.clear()
    yield upstream_server
    upstream_server.script.clear()


def scripted_llm(upstream: ScriptedUpstream) -> dict:  # type: ignore[type-arg]
    """Two models on the scripted upstream: one with native tool calls, one routed like the local model."""
    return {
        "providers": [
            {
                "name": "scripted",
                "base_url": upstream.base_url,
                "timeout_s": 10,
                "models": [
                    {"id": "scripted", "price_prompt_per_1k": 1.0, "price_completion_per_1k": 2.0,
                     "context_window": 4096, "max_output_tokens": 256},
                    {"id": "scripted-router", "price_prompt_per_1k": 0.5, "price_completion_per_1k": 0.5,
                     "context_window": 4096, "max_output_tokens": 256, "native_tools": False},
                ],
            }
        ],
        "default_model": "scripted",
        "local": {"enabled": False},
    }  # fmt: skip


@pytest.fixture
def sandbox_settings() -> dict:  # type: ignore[type-arg]
    """Sandboxes are off unless a test module turns them on (overriding this fixture)."""
    return {"backend": "none"}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, upstream: ScriptedUpstream, sandbox_settings: dict) -> Settings:  # type: ignore[type-arg]
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET,
        auth={"api_key_last_used_interval_s": 60},
        llm=scripted_llm(upstream),
        sandbox=sandbox_settings,
    )


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """agent-ui's own Docker engine (scripts/dockerd), with the sandbox image built: its DOCKER_HOST."""
    import subprocess

    import docker

    from services.sandbox.image import IMAGE, build_image

    started = subprocess.run(
        [str(Path(__file__).resolve().parents[1] / "scripts" / "dockerd"), "start"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if started.returncode != 0:
        raise RuntimeError(f"no Docker engine for the sandbox tests: {started.stderr}")
    host = started.stdout.strip()
    client = docker.DockerClient(base_url=host)
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        build_image(client)
    return host


@pytest.fixture(scope="session")
def agents_engine(docker_engine: str) -> str:
    """The Docker engine with the agents image built on it (the first time: npm downloads, then the import)."""
    import docker

    from services.sandbox.image import TEMPLATES, build_image

    client = docker.DockerClient(base_url=docker_engine)
    try:
        client.images.get(TEMPLATES["agents"].image)
    except docker.errors.ImageNotFound:
        started = time.monotonic()
        build_image(client, template="agents", download_dir=Path("/var/lib/agent-ui-sandbox/downloads"))
        print(f"built {TEMPLATES['agents'].image} in {time.monotonic() - started:.0f} s")
    return docker_engine


@asynccontextmanager
async def started(application: FastAPI) -> AsyncIterator[FastAPI]:
    """What the app's lifespan does: NiceGUI's startup, the app's own lifespan, NiceGUI's shutdown. NiceGUI's
    wrapper would first scan every object on the heap for a uvicorn server (about 1 s a test); in-process
    tests have none, so they run the same steps without the scan."""
    from nicegui.nicegui import _shutdown, _startup

    await _startup()
    try:
        async with application.state.own_lifespan(application):
            yield application
    finally:
        await _shutdown()  # also when the app's own shutdown failed, or every later test finds NiceGUI started


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The whole app (REST and UI) started through its real lifespan."""
    from main import create_app

    with nicegui_reset_globals():
        application = create_app(settings, passwords=cheap_passwords())
        async with started(application):
            yield application


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The in-process app behind a real uvicorn on a free port (for clients that need a server: WebSockets,
    the MCP SDK's own HTTP client)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.01)
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
        yield http


@dataclass
class Account:
    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_account(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    """Register and log in a new user over the API; the first one of a test is the admin."""

    async def make(email: str | None = None, password: str = DEFAULT_PASSWORD) -> Account:
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
        created = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert created.status_code == 201, created.text
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        client.cookies.clear()  # each account speaks with its Bearer token only
        return Account(created.json()["id"], email, password, login.json()["access_token"])

    return make


@pytest.fixture
def ui_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, upstream: ScriptedUpstream) -> str:
    """Environment for the NiceGUI `user` fixture, which builds the app from main.py (request it before `user`)."""
    monkeypatch.setenv("AGENT_UI_DATA_DIR", str(tmp_path / "ui-data"))
    monkeypatch.setenv("AGENT_UI_LLM", json.dumps(scripted_llm(upstream)))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AGENT_UI_SECRET_KEY", TEST_SECRET)
    return database_url


@pytest.fixture
def live_url(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[str]:
    """The app served by a real uvicorn process (SQLite in a temporary data dir), with the scripted upstream."""
    from tests.live_server import live_server

    env = {"AGENT_UI_LLM": json.dumps(scripted_llm(upstream))}
    with live_server(tmp_path / "live-data", extra_env=env) as server:
        yield server.url
