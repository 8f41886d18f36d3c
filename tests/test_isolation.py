"""The isolation matrix: one user's objects are invisible and untouchable to another, on every route.

Every route with an id in its path is read from the app's own OpenAPI schema and must be listed in MATRIX, which
says how to call it with one of alice's objects; a route added later without an entry fails the test until it
is listed (and so checked), and an entry whose route is gone fails too. Called by bob with alice's id, each
answers 404 (admin routes 403), and alice's objects are unchanged after each call. Every GET without an id is
called by both: bob's answers hold none of alice's ids, alice's lists hold hers. WebSocket routes are not in
the schema: they are listed from the app's routes and must be in WEBSOCKET_ROUTES.
"""

from __future__ import annotations

import asyncio
import string
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, SecretStr
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.types import ASGIApp, Message

from agent_ui.capabilities import WebCapability
from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from main import CAPABILITIES, create_app
from services.auth import Scope
from services.capabilities import Capability, Core
from services.jobs import JobContext, JobKind, JobRead
from services.sandbox import SandboxService
from services.settings import McpSettings, Settings
from tests.agent_ui.api.v1.test_podcasts import script_steps
from tests.agent_ui.api.v1.test_slides import deck_steps, template_pptx
from tests.conftest import TEST_SECRET, Account, nicegui_reset_globals, started
from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step

AGENT = "/api/v1/agent"
RAG = f"{AGENT}/rag"
PAYLOAD = b"alice's artifact\n" * 64


# --- a job kind that makes one artifact, registered by a capability of this module (as test_jobs.py does) ---


class ProbeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def make_artifact(params: ProbeParams, job: JobContext) -> dict[str, Any]:
    made = await job.artifact(kind="file", filename="probe.bin", media_type="application/octet-stream",
                              data=PAYLOAD, title="isolation probe")  # fmt: skip
    return {"artifact_id": made.id}


class ProbeCapability(Capability):
    name = "isolation-probe"

    def __init__(self, core: Core) -> None:
        self.kind = JobKind(name="isolation-probe", scope=Scope.GENERATION, params=ProbeParams, run=make_artifact)

    def job_kinds(self) -> list[JobKind[Any]]:
        return [self.kind]


probe_router = api_router(prefix="/isolation-probe", tags=["isolation-probe"], guard=RequireScope(Scope.GENERATION))


@probe_router.post("", status_code=202)
async def submit_probe(body: ProbeParams, principal: CurrentPrincipal, services: ServicesDep) -> JobRead:
    return await services.jobs.submit(principal, "isolation-probe", body)


PROBE = WebCapability(name="isolation-probe", build=ProbeCapability, routers=[probe_router])


@pytest.fixture
def sandbox_settings() -> dict:  # type: ignore[type-arg]
    return {"backend": "local", "warm_pool": {"docker": 0, "local": 0}, "max_live_per_user": 2}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A secret of this test's own. Run as root, the local backend keeps every process's workspaces in one
    directory (/var/lib/agent-ui-sandbox) labelled with a deployment id derived from the secret alone; any other
    app started with the suite's shared secret on another database (another test process on this machine) takes
    these sandboxes for orphans of a dead instance and deletes their workspaces mid-test."""
    # MCP servers here are URLs on this machine that refuse at once (no network, no waiting on a timeout).
    return settings.model_copy(update={"secret_key": SecretStr(f"isolation-{uuid.uuid4().hex}-{'z' * 16}"),
                                       "mcp": McpSettings(allow_private_urls=True)})  # fmt: skip


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    with nicegui_reset_globals():
        application = create_app(settings, capabilities=[*CAPABILITIES, PROBE])
        async with started(application):
            yield application
            # Nobody else shares this secret, so nobody else would ever remove what is left: do it here.
            backend = application.state.services.get(SandboxService).backend
            for sandbox in await backend.list_labelled():
                await backend.destroy(sandbox.ref)


# --- the matrix ---


@dataclass(frozen=True)
class Call:
    """How to call a route with one of alice's objects.

    ``objects``: the kinds of alice's objects whose id fills the path parameter (each one is tried: a run route
    takes a chat turn and a job alike). ``bob``: what bob gets. ``owner``: what the owner gets for the same call
    (alice, or the admin for an admin route), which proves the call is well formed and the id real, so bob's 404
    can only be the ownership check. Bodies are minimal and valid, and would leave a trace if they took effect.
    ``others``: further path parameters, each as (name, kind of alice's object that fills it); ``fixed``: path
    parameters that are no one's id, each as (name, value).
    """

    objects: tuple[str, ...]
    owner: int
    bob: int = 404
    json: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    content: bytes | None = None
    by_admin: bool = False
    others: tuple[tuple[str, str], ...] = ()
    fixed: tuple[tuple[str, str], ...] = ()  # path parameters that are not ids (a line's position)


MATRIX: dict[tuple[str, str], Call] = {
    # First, so that the owner's re-ingest has long finished when the owner deletes the resource; the passage
    # before the re-ingest, which replaces the resource's chunks (new chunk ids).
    ("GET", f"{RAG}/resources/{{resource_id}}"): Call(("resource",), owner=200),
    ("GET", f"{RAG}/resources/{{resource_id}}/chunks/{{chunk_id}}/passage"): Call(("resource",), owner=200,
                                                                                 others=(("chunk_id", "chunk"),)),
    ("POST", f"{RAG}/resources/{{resource_id}}/reingest"): Call(("resource",), owner=202),
    ("DELETE", f"{RAG}/resources/{{resource_id}}"): Call(("resource",), owner=204),
    ("PATCH", "/api/v1/admin/users/{user_id}"): Call(("user",), owner=200, bob=403, json={"disabled": True},
                                                     by_admin=True),
    ("GET", f"{AGENT}/api-keys/{{key_id}}"): Call(("api_key",), owner=200),
    ("PATCH", f"{AGENT}/api-keys/{{key_id}}"): Call(("api_key",), owner=200,
                                                    json={"name": "renamed by bob", "is_active": False}),
    ("DELETE", f"{AGENT}/api-keys/{{key_id}}"): Call(("api_key",), owner=204),
    ("GET", f"{AGENT}/credits/usage/{{session_id}}"): Call(("session",), owner=200),
    ("GET", f"{AGENT}/runs/{{run_id}}"): Call(("run", "job", "rag_job", "prose"), owner=200),
    ("GET", f"{AGENT}/runs/{{run_id}}/events"): Call(("run", "job", "rag_job", "prose"), owner=200),
    # ended: 409 to the owner
    ("POST", f"{AGENT}/runs/{{run_id}}/stop"): Call(("run", "job", "rag_job", "prose"), owner=409),
    ("GET", f"{AGENT}/generation/jobs/{{job_id}}"): Call(("job",), owner=200),
    ("DELETE", f"{AGENT}/generation/jobs/{{job_id}}"): Call(("job",), owner=204),
    ("GET", f"{AGENT}/generation/jobs/{{job_id}}/events"): Call(("job",), owner=200),
    ("POST", f"{AGENT}/generation/jobs/{{job_id}}/cancel"): Call(("job",), owner=409),
    ("GET", f"{AGENT}/artifacts/{{artifact_id}}"): Call(("artifact", "rag_artifact", "podcast_audio", "deck_pptx",
                                                         "prose_text"), owner=200),
    ("GET", f"{AGENT}/artifacts/{{artifact_id}}/meta"): Call(("artifact", "rag_artifact", "podcast_audio",
                                                              "deck_pptx"), owner=200),
    # Reads first (the thumbnail of slide 0 as the job drew it), then changes; the deck's delete after its slide's.
    ("GET", f"{AGENT}/slides/{{deck_id}}"): Call(("deck",), owner=200),
    ("GET", f"{AGENT}/slides/{{deck_id}}/export"): Call(("deck",), owner=200),
    ("GET", f"{AGENT}/slides/{{deck_id}}/slides/{{index}}/thumbnail"): Call(("deck",), owner=200,
                                                                            fixed=(("index", "0"),)),
    ("GET", f"{AGENT}/slides/{{deck_id}}/slides/{{index}}/versions"): Call(("deck",), owner=200,
                                                                           fixed=(("index", "1"),)),
    ("PATCH", f"{AGENT}/slides/{{deck_id}}/slides/{{index}}"): Call(("deck",), owner=200,
                                                                    json={"title": "edited by bob"},
                                                                    fixed=(("index", "1"),)),
    ("POST", f"{AGENT}/slides/{{deck_id}}/slides/{{index}}/versions/{{version}}/restore"): Call(
        ("deck",), owner=200, fixed=(("index", "1"), ("version", "1"))),
    ("POST", f"{AGENT}/slides/{{deck_id}}/slides/{{index}}/regenerate"): Call(("deck",), owner=200, json={},
                                                                              fixed=(("index", "1"),)),
    ("POST", f"{AGENT}/slides/{{deck_id}}/slides"): Call(("deck",), owner=201, json={"title": "added by bob"}),
    ("POST", f"{AGENT}/slides/{{deck_id}}/reorder"): Call(("deck",), owner=200,
                                                          json={"order": [0, 2, 1, 3, 4, 5, 6]}),
    ("DELETE", f"{AGENT}/slides/{{deck_id}}/slides/{{index}}"): Call(("deck",), owner=200, fixed=(("index", "1"),)),
    ("DELETE", f"{AGENT}/slides/{{deck_id}}"): Call(("deck",), owner=204),
    ("DELETE", f"{AGENT}/slides/templates/{{template_id}}"): Call(("template",), owner=204),
    ("GET", f"{AGENT}/generation/podcasts/{{podcast_id}}"): Call(("podcast",), owner=200),
    ("PATCH", f"{AGENT}/generation/podcasts/{{podcast_id}}/lines/{{index}}"): Call(
        ("podcast",), owner=200, json={"text": "spoken by bob"}, fixed=(("index", "1"),)),
    ("GET", f"{AGENT}/generation/artifacts/{{artifact_id}}/transcript"): Call(("podcast_audio",), owner=200),
    ("POST", f"{AGENT}/chat/runs/{{run_id}}/stop"): Call(("run",), owner=409),
    ("GET", f"{AGENT}/chat/runs/{{run_id}}"): Call(("run",), owner=200),
    ("GET", f"{AGENT}/chat/runs/{{run_id}}/events"): Call(("run",), owner=200),
    ("GET", f"{AGENT}/chat/sessions/{{session_id}}"): Call(("session",), owner=200),
    ("PATCH", f"{AGENT}/chat/sessions/{{session_id}}"): Call(("session",), owner=200,
                                                             json={"title": "renamed by bob"}),
    ("DELETE", f"{AGENT}/chat/sessions/{{session_id}}"): Call(("session",), owner=204),
    ("GET", f"{AGENT}/sandboxes/{{sandbox_id}}"): Call(("sandbox",), owner=200),
    ("GET", f"{AGENT}/mcp/servers/{{server_id}}"): Call(("mcp_server",), owner=200),
    ("PATCH", f"{AGENT}/mcp/servers/{{server_id}}"): Call(("mcp_server",), owner=200, json={"enabled": False}),
    ("DELETE", f"{AGENT}/mcp/servers/{{server_id}}"): Call(("mcp_server",), owner=204),
    ("POST", f"{AGENT}/mcp/servers/{{server_id}}/test"): Call(("mcp_server",), owner=200),
    ("GET", f"{AGENT}/mcp/servers/{{server_id}}/tools"): Call(("mcp_server",), owner=503),  # it refuses: 503
    ("POST", f"{AGENT}/mcp/servers/{{server_id}}/tools/{{name}}/call"): Call(
        ("mcp_server",), owner=503, json={"arguments": {}}, others=(("name", "mcp_tool"),)),
    ("PATCH", f"{AGENT}/user-settings/mcp/{{tool_type}}"): Call(("mcp_setting",), owner=200,
                                                               json={"is_active": False}),
    ("DELETE", f"{AGENT}/user-settings/mcp/{{tool_type}}"): Call(("mcp_setting",), owner=204),
    # The terminal's routes before the sandbox's delete (the owner's delete goes through).
    ("POST", f"{AGENT}/sandboxes/{{sandbox_id}}/terminals"): Call(("sandbox",), owner=201, json={}),
    ("GET", f"{AGENT}/sandboxes/{{sandbox_id}}/terminals"): Call(("sandbox",), owner=200),
    ("GET", f"{AGENT}/sandboxes/{{sandbox_id}}/terminals/{{terminal_id}}"): Call(
        ("sandbox",), owner=200, others=(("terminal_id", "terminal"),)),
    ("DELETE", f"{AGENT}/sandboxes/{{sandbox_id}}/terminals/{{terminal_id}}"): Call(
        ("sandbox",), owner=204, others=(("terminal_id", "terminal"),)),
    ("DELETE", f"{AGENT}/sandboxes/{{sandbox_id}}"): Call(("sandbox",), owner=204),
    ("POST", f"{AGENT}/sandboxes/{{sandbox_id}}/keepalive"): Call(("sandbox",), owner=200),
    ("POST", f"{AGENT}/sandboxes/{{sandbox_id}}/exec"): Call(("sandbox",), owner=200,
                                                            json={"command": "touch from-bob-exec"}),
    ("GET", f"{AGENT}/sandboxes/{{sandbox_id}}/files"): Call(("sandbox",), owner=200),
    ("PUT", f"{AGENT}/sandboxes/{{sandbox_id}}/files"): Call(("sandbox",), owner=200,
                                                            params={"path": "from-bob.txt"}, content=b"bob was here"),
}  # fmt: skip

# GET routes without an id: the lists name which of the caller's own objects they must show (and the other
# user's they must not); the rest are still searched for the other user's ids. Query parameters per route.
LISTS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    f"{AGENT}/api-keys": (("api_key", "key_prefix"), {}),
    f"{AGENT}/chat/sessions": (("session",), {}),
    f"{AGENT}/generation/jobs": (("job", "artifact", "podcast", "podcast_audio", "deck", "deck_pptx"), {}),
    f"{AGENT}/generation/prose": (("prose", "prose_text"), {}),
    f"{AGENT}/slides": (("deck", "deck_pptx"), {}),
    f"{AGENT}/slides/templates": (("template",), {}),
    f"{AGENT}/sandboxes": (("sandbox",), {"all": "true"}),
    f"{AGENT}/credits/usage": (("session",), {}),
    f"{AGENT}/credits/history": (("run",), {}),
    f"{RAG}/resources": (("resource", "rag_job", "rag_artifact"), {}),
    f"{AGENT}/mcp/servers": (("mcp_server",), {}),
    f"{AGENT}/user-settings/mcp": (("mcp_setting",), {}),
    # One's voice preference: voice ids are every user's (GET /tts/voices lists them all), so each user's own
    # rate, a number no one else has, is what shows whose preference an answer holds.
    f"{AGENT}/tts/preferences": (("tts_rate",), {}),
    f"{AGENT}/tts/sample": ((), {"voice": "espeak:en-us"}),  # every user hears the same voices
}
NOT_LISTS = {
    "/api/v1/auth/me",
    "/api/v1/health",
    f"{AGENT}/config",
    f"{AGENT}/credits/balance",
    f"{AGENT}/credits/spend",
    f"{AGENT}/tts/voices",
}
ALL_KINDS = ("user", "api_key", "session", "run", "job", "artifact", "sandbox", "terminal", "resource", "chunk",
             "rag_job", "rag_artifact", "mcp_server", "mcp_setting", "tts_rate", "podcast",
             "podcast_audio", "deck", "deck_pptx", "template", "prose", "prose_text")  # fmt: skip
ADMIN_LISTS = {"/api/v1/admin/users"}  # every user's: 403 to anyone but an admin


@dataclass(frozen=True)
class WebSocketCall:
    """How to open a WebSocket route with alice's objects (like Call): each path parameter and the kind of
    alice's object that fills it. Bob's handshake must be refused, alice's accepted."""

    params: dict[str, str]


# WebSocket routes under /api: a new one must be listed here before the test passes.
TERMINAL_SOCKET = f"{AGENT}/sandboxes/{{sandbox_id}}/terminals/{{terminal_id}}"
WEBSOCKET_ROUTES: dict[str, WebSocketCall] = {
    TERMINAL_SOCKET: WebSocketCall({"sandbox_id": "sandbox", "terminal_id": "terminal"}),
}


# --- reading the app ---


def path_parameters(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def schema_routes(schema: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops if method in methods}


def websocket_routes(routes: Sequence[BaseRoute], prefix: str = "") -> set[str]:
    """Every WebSocket route's path, through included routers and mounts."""
    found: set[str] = set()
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, WebSocketRoute):
            found.add(prefix + str(context.path))
        elif isinstance(route, Mount):
            found |= websocket_routes(route.routes, prefix + route.path)
    return found


def api_websocket_routes(app: FastAPI) -> set[str]:
    return {path for path in websocket_routes(app.routes) if path == "/api" or path.startswith("/api/")}


async def handshake(app: ASGIApp, path: str, headers: dict[str, str]) -> str:
    """Open a WebSocket on the app in this event loop: "accept", "close", or the HTTP status of a refusal."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})
    answers: list[Message] = []

    async def send(message: Message) -> None:
        answers.append(message)
        if message["type"] in ("websocket.accept", "websocket.close", "websocket.http.response.start"):
            inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

    scope = {
        "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "scheme": "ws", "server": ("test", 80), "client": ("127.0.0.1", 50000), "root_path": "",
        "path": path, "raw_path": path.encode(), "query_string": b"", "subprotocols": [], "extensions": {},
        "headers": [(b"host", b"test"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
    }  # fmt: skip
    await asyncio.wait_for(app(scope, inbox.get, send), timeout=10)
    first = answers[0]
    if first["type"] == "websocket.http.response.start":
        return str(first["status"])
    return first["type"].removeprefix("websocket.")


# --- alice's and bob's objects ---


@dataclass
class Objects:
    account: Account
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def values(self) -> dict[str, str]:
        """What identifies this user's objects in an answer (ids, the email, the key's displayed prefix)."""
        return {**self.ids, "email": self.account.email}


async def job_done(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(500):
        job = (await client.get(f"{AGENT}/generation/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("done", "failed", "cancelled"):
            assert job["status"] == "done", job
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} never ended")


def rag_text(account: Account) -> str:
    return f"Notes of {account.email}: the lighthouse keeper trimmed the wicks at dusk."


async def one_of_each(client: httpx.AsyncClient, account: Account, upstream: ScriptedUpstream) -> Objects:
    """An API key, a chat session with its run, a job with its artifact, a sandbox, a RAG resource (with its
    chunk, ingestion job and original): owned by ``account``."""
    objects = Objects(account, {"user": account.id})
    key = await client.post(f"{AGENT}/api-keys", json={"name": f"key of {account.email}"}, headers=account.headers)
    assert key.status_code == 201, key.text
    objects.ids |= {"api_key": key.json()["id"], "key_prefix": key.json()["prefix"]}

    turn = await client.post(f"{AGENT}/chat/stream", json={"message": "hello"}, headers=account.headers)
    assert turn.status_code == 200, turn.text
    events = parse(turn.text)
    assert events[-1].type == "done", events
    objects.ids |= {"session": events[0].data["session_id"], "run": events[0].data["run_id"],
                    "message": events[0].data["message_id"]}  # fmt: skip

    job = await client.post(f"{AGENT}/isolation-probe", json={}, headers=account.headers)
    assert job.status_code == 202, job.text
    done = await job_done(client, account.headers, job.json()["id"])
    objects.ids |= {"job": done["id"], "artifact": done["result"]["artifact_id"]}

    sandbox = await client.post(f"{AGENT}/sandboxes", json={}, headers=account.headers)
    assert sandbox.status_code == 201, sandbox.text
    assert sandbox.json()["backend"] == "local"
    objects.ids["sandbox"] = sandbox.json()["id"]
    terminal = await client.post(f"{AGENT}/sandboxes/{objects.ids['sandbox']}/terminals", json={},
                                 headers=account.headers)  # fmt: skip
    assert terminal.status_code == 201, terminal.text
    objects.ids["terminal"] = terminal.json()["id"]

    created = await client.post(f"{RAG}/resources", json={"text": rag_text(account)}, headers=account.headers)
    assert created.status_code == 202, created.text
    for _ in range(1500):
        resource = (await client.get(f"{RAG}/resources/{created.json()['id']}", headers=account.headers)).json()
        if resource["status"] != "processing":
            break
        await asyncio.sleep(0.02)
    assert resource["status"] == "ready", resource
    await job_ended(client, account.headers, resource["job_id"])
    found = await client.post(f"{RAG}/search", json={"query": "lighthouse keeper"}, headers=account.headers)
    (hit,) = found.json()["hits"]
    objects.ids |= {"resource": resource["id"], "chunk": hit["chunk_id"], "rag_job": resource["job_id"],
                    "rag_artifact": resource["artifact_id"]}  # fmt: skip

    tag = uuid.uuid4().hex[:8]
    server = await client.post(f"{AGENT}/mcp/servers", json={"name": f"server-{tag}", "transport": "streamable_http",
                                                             "url": f"http://127.0.0.1:9/{tag}"},
                               headers=account.headers)  # fmt: skip
    assert server.status_code == 201, server.text
    setting = await client.post(f"{AGENT}/user-settings/mcp/custom", json={"name": f"tool-{tag}", "mcp_config": {},
                                                                          "auth_json": {"token": f"t-{tag}-secret"}},
                                headers=account.headers)  # fmt: skip
    assert setting.status_code == 201, setting.text
    objects.ids |= {"mcp_server": server.json()["id"], "mcp_setting": setting.json()["tool_type"],
                    "mcp_tool": f"echo{tag}"}  # fmt: skip

    upstream.push(*script_steps(grounded=False))
    podcast = await client.post(f"{AGENT}/generation/podcast", json={"topic": f"tides for {account.email}"},
                                headers=account.headers)  # fmt: skip
    assert podcast.status_code == 202, podcast.text
    made = await job_done(client, account.headers, podcast.json()["id"])
    objects.ids |= {"podcast": made["id"], "podcast_audio": made["result"]["artifact_id"]}

    upstream.push(*deck_steps(figures=False))
    deck = await client.post(f"{AGENT}/generation/ppt", json={"topic": f"lights for {account.email}"},
                             headers=account.headers)  # fmt: skip
    assert deck.status_code == 202, deck.text
    made = await job_done(client, account.headers, deck.json()["id"])
    objects.ids |= {"deck": made["id"], "deck_pptx": made["result"]["artifact_id"]}
    upload = {"file": ("mine.pptx", template_pptx(), "application/octet-stream")}
    template = await client.post(f"{AGENT}/slides/templates", headers=account.headers, files=upload)
    assert template.status_code == 201, template.text
    objects.ids["template"] = template.json()["id"]
    upstream.push(Step(text=[f"A note for {account.email}."]))
    prose = await client.post(f"{AGENT}/generation/prose", json={"prompt": "a note"}, headers=account.headers)
    events = parse(prose.text)
    artifact = next(event.data for event in events if event.type == "artifact")
    objects.ids |= {"prose": events[0].data["run_id"], "prose_text": artifact["id"]}

    rate = 0.5 + uuid.uuid4().int % 10**12 / 10**12  # within 0.5..1.5, with digits no one else's rate shares
    voice = await client.put(f"{AGENT}/tts/preferences", json={"voice": "espeak:en-gb+f2", "rate": rate},
                             headers=account.headers)  # fmt: skip
    assert voice.status_code == 200 and repr(rate) in voice.text, voice.text
    objects.ids["tts_rate"] = repr(rate)
    return objects


async def job_ended(client: httpx.AsyncClient, headers: dict[str, str], run_id: str) -> None:
    """Wait for a job to end (a resource is ready a moment before its ingestion job has finished)."""
    for _ in range(500):
        if (await client.get(f"{AGENT}/runs/{run_id}", headers=headers)).json()["status"] == "done":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {run_id} never ended")


@dataclass
class Snapshot:
    """What alice's objects looked like before bob tried anything."""

    api_key: dict[str, Any]
    session: dict[str, Any]
    sandbox: dict[str, Any]
    resource: dict[str, Any]


async def snapshot(client: httpx.AsyncClient, alice: Objects) -> Snapshot:
    async def get(path: str) -> dict[str, Any]:
        response = await client.get(path, headers=alice.account.headers)
        assert response.status_code == 200, response.text
        return response.json()

    return Snapshot(
        await get(f"{AGENT}/api-keys/{alice.ids['api_key']}"),
        await get(f"{AGENT}/chat/sessions/{alice.ids['session']}"),
        await get(f"{AGENT}/sandboxes/{alice.ids['sandbox']}"),
        await get(f"{RAG}/resources/{alice.ids['resource']}"),
    )


async def assert_untouched(
    client: httpx.AsyncClient, alice: Objects, before: Snapshot, kinds: Iterable[str], after: str
) -> None:
    """Alice still gets each object, as it was."""
    headers = alice.account.headers

    async def get(path: str, **kwargs: Any) -> httpx.Response:
        response = await client.get(path, headers=headers, **kwargs)
        assert response.status_code == 200, (after, path, response.status_code, response.text)
        return response

    for kind in kinds:
        ident = alice.ids[kind]
        if kind == "user":
            me = (await get("/api/v1/auth/me")).json()
            assert (me["id"], me["role"], me["is_disabled"]) == (ident, "user", False), (after, me)
        elif kind == "api_key":
            key = (await get(f"{AGENT}/api-keys/{ident}")).json()
            assert key == before.api_key, after
        elif kind == "session":
            session = (await get(f"{AGENT}/chat/sessions/{ident}")).json()
            assert session == before.session, after
            await get(f"{AGENT}/credits/usage/{ident}")
        elif kind == "run":
            assert (await get(f"{AGENT}/runs/{ident}")).json()["status"] == "done", after
            assert (await get(f"{AGENT}/chat/runs/{ident}")).json()["status"] == "done", after
        elif kind == "job":
            job = (await get(f"{AGENT}/generation/jobs/{ident}")).json()
            assert job["status"] == "done" and [a["id"] for a in job["artifacts"]] == [alice.ids["artifact"]], after
        elif kind == "artifact":
            assert (await get(f"{AGENT}/artifacts/{ident}")).content == PAYLOAD, after
        elif kind == "sandbox":
            sandbox = (await get(f"{AGENT}/sandboxes/{ident}")).json()
            assert sandbox["status"] == "running", (after, sandbox)
            assert sandbox["expires_at"] == before.sandbox["expires_at"], (after, "bob's keepalive took effect")
            listing = (await get(f"{AGENT}/sandboxes/{ident}/files")).json()
            names = [entry["name"] for entry in listing["entries"]]
            assert names == [".home"], (after, "bob wrote into alice's workspace", listing)  # only her empty home
        elif kind == "terminal":
            terminal = (await get(f"{AGENT}/sandboxes/{alice.ids['sandbox']}/terminals/{ident}")).json()
            assert terminal["status"] == "running" and terminal["rows"] == 24, (after, "bob reached the terminal")
            opened = (await get(f"{AGENT}/sandboxes/{alice.ids['sandbox']}/terminals")).json()
            assert [t["id"] for t in opened] == [ident], (after, "bob opened a terminal in her sandbox")
        elif kind == "resource":
            resource = (await get(f"{RAG}/resources/{ident}")).json()
            assert resource == before.resource, (after, resource)
        elif kind == "chunk":
            passage = (await get(f"{RAG}/resources/{alice.ids['resource']}/chunks/{ident}/passage")).json()
            assert passage["text"] == rag_text(alice.account), (after, passage)
            found = await client.post(f"{RAG}/search", json={"query": "lighthouse keeper"}, headers=headers)
            assert [hit["chunk_id"] for hit in found.json()["hits"]] == [ident], (after, found.text)
        elif kind == "rag_job":
            assert (await get(f"{AGENT}/runs/{ident}")).json()["status"] == "done", after
        elif kind == "mcp_server":
            server = (await get(f"{AGENT}/mcp/servers/{ident}")).json()
            assert server["enabled"] is True and server["url"].startswith("http://127.0.0.1:9/"), (after, server)
        elif kind == "mcp_setting":
            (setting,) = (await get(f"{AGENT}/user-settings/mcp")).json()
            assert setting["tool_type"] == ident and setting["is_active"] is True, (after, setting)
        elif kind == "tts_rate":
            preference = (await get(f"{AGENT}/tts/preferences")).json()
            assert (preference["voice"], repr(preference["rate"])) == ("espeak:en-gb+f2", ident), (after, preference)
        elif kind == "podcast":
            podcast = (await get(f"{AGENT}/generation/podcasts/{ident}")).json()
            assert podcast["version"] == 1 and "bob" not in podcast["lines"][1]["text"], (after, podcast)
        elif kind == "podcast_audio":
            meta = (await get(f"{AGENT}/artifacts/{ident}/meta")).json()
            assert meta["version"] == 1 and meta["media_type"] == "audio/mpeg", (after, meta)
        elif kind == "deck":
            deck = (await get(f"{AGENT}/slides/{ident}")).json()
            titles = [slide["title"] for slide in deck["slides"]]
            assert deck["version"] == 1 and len(titles) == 6 and "bob" not in str(titles), (after, deck)
        elif kind == "deck_pptx":
            meta = (await get(f"{AGENT}/artifacts/{ident}/meta")).json()
            assert meta["version"] == 1 and meta["kind"] == "pptx", (after, meta)
        elif kind == "template":
            listed = (await get(f"{AGENT}/slides/templates")).json()["items"]
            assert [t["id"] for t in listed] == [ident], (after, listed)
        elif kind == "prose":
            assert (await get(f"{AGENT}/runs/{ident}")).json()["status"] == "done", after
        elif kind == "prose_text":
            assert alice.account.email in (await get(f"{AGENT}/artifacts/{ident}")).text, after
        elif kind == "rag_artifact":
            assert (await get(f"{AGENT}/artifacts/{ident}")).text == rag_text(alice.account), after
        else:
            raise AssertionError(f"no check for alice's {kind}")


async def call(client: httpx.AsyncClient, method: str, template: str, spec: Call, ident: str, ids: dict[str, str],
               headers: dict[str, str]) -> httpx.Response:  # fmt: skip
    """``ident`` fills the route's first path parameter, alice's ``ids`` the ``others``."""
    others = {name: ids[kind] for name, kind in spec.others} | dict(spec.fixed)
    (name,) = [name for name in path_parameters(template) if name not in others]
    path = template.format(**{name: ident}, **others)
    return await client.request(method, path, headers=headers, json=spec.json, params=spec.params,
                                content=spec.content)  # fmt: skip


# --- the tests ---


async def test_every_id_route_is_404_to_another_user_and_lists_show_only_ones_own(
    app: FastAPI, client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    schema = (await client.get("/openapi.json")).json()
    routes = schema_routes(schema)
    id_routes = {(method, path) for method, path in routes if path_parameters(path)}
    assert id_routes - MATRIX.keys() == set(), "id routes missing from MATRIX: list each with how to call it"
    assert MATRIX.keys() - id_routes == set(), "MATRIX lists routes the app no longer has"
    for (method, path), spec in MATRIX.items():
        assert len(path_parameters(path)) == 1 + len(spec.others) + len(spec.fixed), f"{method} {path}: parameters"
        assert spec.bob in (403, 404) and (spec.bob == 403) == spec.by_admin, (method, path)
    plain_gets = {path for method, path in routes if method == "GET" and not path_parameters(path)}
    unclassified = plain_gets - LISTS.keys() - NOT_LISTS - ADMIN_LISTS
    assert unclassified == set(), "GET routes without an id missing from LISTS / NOT_LISTS / ADMIN_LISTS"
    assert (LISTS.keys() | NOT_LISTS | ADMIN_LISTS) - plain_gets == set(), "listed GET routes the app no longer has"

    admin = await make_account("admin@example.com")
    alice_account, bob_account = await make_account("alice@example.com"), await make_account("bob@example.com")
    alice = await one_of_each(client, alice_account, upstream)
    bob = await one_of_each(client, bob_account, upstream)
    assert not set(alice.values.values()) & set(bob.values.values())
    before = await snapshot(client, alice)

    # Bob, with each of alice's ids on every route that takes one: 404 (403 on admin routes), and nothing changes.
    for (method, template), spec in MATRIX.items():
        for kind in spec.objects:
            response = await call(client, method, template, spec, alice.ids[kind], alice.ids, bob.account.headers)
            where = f"bob: {method} {template} with alice's {kind}"
            assert response.status_code == spec.bob, (where, response.status_code, response.text)
            code = "not_found" if spec.bob == 404 else "admin_required"
            assert response.json()["error"]["code"] == code, (where, response.text)
            for value in alice.values.values():
                assert value not in response.text, (where, "the refusal names alice's object", response.text)
            await assert_untouched(client, alice, before, spec.objects, after=where)
    await assert_untouched(client, alice, before, ALL_KINDS, after="all of bob's calls")

    # Every GET without an id, by each of them: none of the other's ids; each list shows its caller's objects.
    for path in sorted(plain_gets):
        kinds, params = LISTS.get(path, ((), {}))
        for caller, other in ((bob, alice), (alice, bob)):
            response = await client.get(path, params=params, headers=caller.account.headers)
            expected = 403 if path in ADMIN_LISTS else 200
            assert response.status_code == expected, (path, caller.account.email, response.text)
            for name, value in other.values.items():
                assert value not in response.text, (path, caller.account.email, f"shows the other's {name}")
            for kind in kinds:
                assert caller.ids[kind] in response.text, (path, caller.account.email, f"misses its {kind}")
    everyone = (await client.get("/api/v1/admin/users", headers=admin.headers)).json()
    assert {alice.ids["user"], bob.ids["user"]} <= {user["id"] for user in everyone["items"]}

    # The same calls by the owner succeed (or meet the object's state): each call is well formed and each id
    # real, so bob's answers were the ownership check. Destructive calls last, the admin's last of all.
    ordered = sorted(MATRIX.items(), key=lambda item: (item[1].by_admin, item[0][0] == "DELETE"))
    upstream.push(Step(text=['{"title": "Rewritten", "bullets": ["a", "b", "c"], "notes": "", "sources": []}']))
    for (method, template), spec in ordered:
        headers = admin.headers if spec.by_admin else alice.account.headers
        for kind in spec.objects:
            response = await call(client, method, template, spec, alice.ids[kind], alice.ids, headers)
            where = f"owner: {method} {template} with alice's {kind}"
            assert response.status_code == spec.owner, (where, response.status_code, response.text)
    assert (await client.get("/api/v1/auth/me", headers=alice.account.headers)).status_code == 401  # disabled


async def test_websocket_routes_under_api_are_all_listed_and_refuse_another_users_ids(
    app: FastAPI, client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    found = api_websocket_routes(app)
    assert found - WEBSOCKET_ROUTES.keys() == set(), "WebSocket routes missing from WEBSOCKET_ROUTES"
    assert WEBSOCKET_ROUTES.keys() - found == set(), "WEBSOCKET_ROUTES lists routes the app no longer has"
    if not WEBSOCKET_ROUTES:
        return
    await make_account("admin@example.com")
    alice = await one_of_each(client, await make_account("alice@example.com"), upstream)
    bob = await make_account("bob@example.com")
    for template, spec in WEBSOCKET_ROUTES.items():
        assert set(path_parameters(template)) == set(spec.params), template
        path = template.format(**{name: alice.ids[kind] for name, kind in spec.params.items()})
        refused = await handshake(app, path, bob.headers)
        assert refused != "accept", (f"bob opened {template} with alice's objects", refused)
        assert await handshake(app, path, alice.account.headers) == "accept", template


# A capability whose router has a WebSocket route: what the listing above must catch.
socket_router = api_router(prefix="/isolation-socket", tags=["isolation-socket"], guard=RequireScope(Scope.SANDBOXES))


@socket_router.websocket("/{sandbox_id}")
async def socket_route(websocket: WebSocket, sandbox_id: str) -> None:
    await websocket.close()


SOCKET = WebCapability(name="isolation-socket", build=ProbeCapability, routers=[socket_router])


async def test_the_websocket_listing_finds_a_capability_socket_and_the_probe_tells_accept_from_refusal(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db",
                        secret_key=TEST_SECRET, sandbox={"backend": "none"})  # fmt: skip
    with nicegui_reset_globals():
        with_socket = create_app(settings, capabilities=[*CAPABILITIES, SOCKET])
        assert api_websocket_routes(with_socket) == {f"{AGENT}/isolation-socket/{{sandbox_id}}", TERMINAL_SOCKET}
    with nicegui_reset_globals():
        assert api_websocket_routes(create_app(settings)) == {TERMINAL_SOCKET}

    async def accept(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    async def refuse(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    toy = Starlette(routes=[WebSocketRoute("/api/open", accept), WebSocketRoute("/api/shut", refuse)])
    assert websocket_routes(toy.routes) == {"/api/open", "/api/shut"}
    assert await handshake(toy, "/api/open", {}) == "accept"
    assert await handshake(toy, "/api/shut", {}) == "close"
