"""Attacks on the sandbox API, replayed on the real Docker engine and the local bubblewrap backend (nothing of ours
mocked): bad env and file names stopped at the edge, failed creates that leave nothing behind, links to another
user's chat session or run, and engine errors that must not come out in the engine's words."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path

import docker
import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from services.sandbox import SandboxService
from services.sandbox.backends.bwrap import CGROUP_ROOT, CONTROLLERS
from services.sandbox.models import Sandbox
from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step

# The database plays no part here (its own tests run on SQLite and PostgreSQL): SQLite only, to keep the suite fast.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SANDBOXES = "/api/v1/agent/sandboxes"
BOTH = pytest.mark.parametrize("sandbox_settings", [{"backend": "docker"}, {"backend": "local"}], indirect=True)
# What the engine's own messages carry: container ids (64 hex, or the 12-hex short form).
ENGINE_ID = re.compile(r"[0-9a-f]{12}")


@pytest.fixture
def sandbox_settings(request: pytest.FixtureRequest, docker_engine: str) -> dict:  # type: ignore[type-arg]
    changes = getattr(request, "param", None) or {}
    return {
        "backend": "docker", "docker_host": docker_engine, "max_live_per_user": 2, "default_memory_mb": 256,
        "disk_mb": 20, "warm_pool": {"docker": 0, "local": 0}, **changes,
    }  # fmt: skip


def service(app: FastAPI) -> SandboxService:
    return app.state.services.get(SandboxService)


async def engine_holds(app: FastAPI, *, user_id: str) -> list[str]:
    """Everything of the user's the engine or the host still holds, found by the user's label and, for each of the
    user's sandbox rows, by its name (a part-made sandbox may have no labels to find it by)."""
    sandboxes = service(app)
    settings = app.state.services.settings.sandbox
    async with app.state.services.core.db.transaction(readonly=True) as session:
        ids = [row.id for row in (await session.exec(select(Sandbox).where(Sandbox.user_id == user_id))).all()]
    if sandboxes.backend.kind == "docker":
        engine = docker.DockerClient(base_url=settings.docker_host)
        label = {"label": f"agent-ui.user-id={user_id}"}
        # sparse: no inspect per container, which would race a removal under way (NotFound)
        found = [f"container {c.id[:12]}" for c in engine.containers.list(all=True, filters=label, sparse=True)]
        found += [f"volume {v.name}" for v in engine.volumes.list(filters=label)]
        for sandbox_id in ids:
            name = {"name": f"agent-ui-{sandbox_id}"}
            found += [f"container {c.id[:12]}" for c in engine.containers.list(all=True, filters=name, sparse=True)]
            found += [f"volume {v.name}" for v in engine.volumes.list(filters=name)]
        return sorted(set(found))
    found = [s.ref for s in await sandboxes.backend.list_labelled() if s.user_id == user_id]
    root = (settings.local_dir or Path("/var/lib/agent-ui-sandbox")) / "workspaces"
    for sandbox_id in ids:
        ref = sandbox_id.replace("_", "")
        places = [root / ref] + [CGROUP_ROOT / c / "agent-ui" / ref for c in CONTROLLERS]
        found += [str(place) for place in places if place.exists()]
    return sorted(set(found))


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> dict:  # type: ignore[type-arg]
    response = await client.post(SANDBOXES, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def held(client: httpx.AsyncClient, headers: dict[str, str]) -> Decimal:
    return Decimal((await client.get("/api/v1/agent/credits/balance", headers=headers)).json()["held"])


# -- row 2: bad input is a 422 at the edge; a failed create leaves nothing ---------------------------------------


@BOTH
async def test_an_env_the_engine_cannot_take_is_422_and_starts_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    for env in [
        {"A": "x\u0000y"},  # NUL: the engine failed the start, leaked the container and answered "does not answer"
        {"A=B": "x"},
        {"": "x"},
        {"A-B": "x"},
        {"A": "x" * 4097},
        {f"V{i}": "x" * 1000 for i in range(40)},  # 40 KB in all
        {f"V{i}": "" for i in range(65)},
    ]:
        response = await client.post(SANDBOXES, json={"env": env}, headers=account.headers)
        assert response.status_code == 422, (env, response.text)
        assert response.json()["error"]["code"] in ("validation_error", "invalid_text")  # NUL: refused as text
    assert (await client.post(SANDBOXES, json={"cpu": 0.001}, headers=account.headers)).status_code == 422
    assert (await client.get(SANDBOXES, params={"all": "true"}, headers=account.headers)).json() == []
    assert await engine_holds(app, user_id=account.id) == []
    assert await held(client, account.headers) == 0

    # Nothing counted toward the quota: the user still gets all of it.
    sandboxes = [await create(client, account.headers, env={"GREETING": "hello"}) for _ in range(2)]
    assert (await client.post(SANDBOXES, json={}, headers=account.headers)).status_code == 429
    base = f"{SANDBOXES}/{sandboxes[0]['id']}"
    ran = await client.post(f"{base}/exec", json={"command": "echo $GREETING"}, headers=account.headers)
    assert ran.json()["stdout"] == "hello\n"
    for body in [{"command": "echo $A", "env": {"A": "x\u0000y"}}, {"command": "echo a\u0000b"}]:
        assert (await client.post(f"{base}/exec", json=body, headers=account.headers)).status_code == 422, body
    for sandbox in sandboxes:
        assert (await client.delete(f"{SANDBOXES}/{sandbox['id']}", headers=account.headers)).status_code == 204


@BOTH
async def test_file_names_no_file_system_takes_are_422_at_the_edge(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    base = f"{SANDBOXES}/{(await create(client, account.headers))['id']}"
    for path in [
        "a" * 300,  # one name past 255 bytes: was a 503 "the engine does not answer"
        "dir/" + "é" * 128,  # 128 characters, 256 bytes
        "x\u0000y",
        "/".join(["é" * 100] * 6),  # 605 characters, 1205 bytes
    ]:
        put = await client.put(f"{base}/files", params={"path": path}, content=b"x", headers=account.headers)
        assert put.status_code == 422 and put.json()["error"]["code"] == "validation_error", (path, put.text)
        got = await client.get(f"{base}/files", params={"path": path}, headers=account.headers)
        assert got.status_code == 422, (path, got.text)
        ran = await client.post(f"{base}/exec", json={"command": "pwd", "workdir": path}, headers=account.headers)
        assert ran.status_code == 422, (path, ran.text)
    # The longest name there is still works, and the sandbox is as it was.
    longest = "d/" + "n" * 255
    put = await client.put(f"{base}/files", params={"path": longest}, content=b"kept", headers=account.headers)
    assert put.status_code == 200, put.text
    assert (await client.get(f"{base}/files", params={"path": longest}, headers=account.headers)).content == b"kept"
    listing = (await client.get(f"{base}/files", headers=account.headers)).json()
    assert [entry["name"] for entry in listing["entries"]] == [".home", "d"]
    await client.delete(base, headers=account.headers)


@pytest.mark.parametrize(
    "sandbox_settings",
    [{"backend": "docker", "default_cpu": 0.001}, {"backend": "local", "default_cpu": 0.001}],
    indirect=True,
)
async def test_a_create_the_engine_fails_leaves_nothing_and_is_not_engine_down(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    """0.1% of a CPU (an operator's setting here) is taken by the schema and refused by the engine part-way
    through the create (Docker: at the start, after the volume and container were made; local: at the cgroup)."""
    backend = service(app).backend
    if backend.kind == "local" and not backend.uses_cgroups:  # type: ignore[attr-defined]
        pytest.skip("without cgroups the local backend applies no CPU limit to fail on")
    account = await make_account()
    for _ in range(3):  # more than the quota of 2: failed creates do not count
        response = await client.post(SANDBOXES, json={}, headers=account.headers)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "sandbox_engine_error" and "does not answer" not in error["message"]
        assert not ENGINE_ID.search(error["message"]) and "/" not in error["message"]
    rows = (await client.get(SANDBOXES, params={"all": "true"}, headers=account.headers)).json()
    assert [(row["status"], row["destroy_reason"]) for row in rows] == [("failed", "create failed")] * 3
    assert (await client.get(SANDBOXES, headers=account.headers)).json() == []
    assert await engine_holds(app, user_id=account.id) == []
    assert await held(client, account.headers) == 0
    assert (await client.get("/api/v1/health")).json()["dependencies"]["docker"]["status"] == "ok"


async def test_a_create_cancelled_midway_leaves_nothing(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    """A client that goes away while the container starts: the create's thread runs on, and what it makes goes."""
    from services.sandbox.schemas import SandboxCreate

    account = await make_account()
    engine = docker.DockerClient(base_url=app.state.services.settings.sandbox.docker_host)
    creating = asyncio.ensure_future(service(app).create(account.id, SandboxCreate(env={"A": "b"})))
    label = {"label": f"agent-ui.user-id={account.id}"}
    while not engine.containers.list(all=True, filters=label, sparse=True):  # being made: the caller goes away
        assert not creating.done()
        await asyncio.sleep(0.005)
    creating.cancel()
    with pytest.raises(asyncio.CancelledError):
        await creating
    for _ in range(400):  # the create's thread finishes, then its undo removes what it made
        if await engine_holds(app, user_id=account.id) == []:
            break
        await asyncio.sleep(0.025)
    assert await engine_holds(app, user_id=account.id) == []
    rows = (await client.get(SANDBOXES, params={"all": "true"}, headers=account.headers)).json()
    assert all(row["status"] == "failed" for row in rows)
    assert await held(client, account.headers) == 0


async def test_a_container_left_behind_by_its_row_is_removed_without_a_restart(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    """Should a clean-up fail too (the engine away for a moment), the container must not live until the next
    start: recovery, after every heartbeat, removes this instance's sandboxes whose rows are no longer live."""
    account = await make_account()
    stray, kept = await create(client, account.headers), await create(client, account.headers)
    async with app.state.services.core.db.transaction() as session:
        row = await session.get(Sandbox, stray["id"])
        assert row is not None
        row.status = "failed"  # what a create whose clean-up could not reach the engine leaves
        session.add(row)
    await app.state.services.core.instance.recover()
    engine = docker.DockerClient(base_url=app.state.services.settings.sandbox.docker_host)
    assert engine.containers.list(all=True, filters={"label": f"agent-ui.sandbox-id={stray['id']}"}) == []
    assert len(engine.containers.list(filters={"label": f"agent-ui.sandbox-id={kept['id']}"})) == 1
    await client.delete(f"{SANDBOXES}/{kept['id']}", headers=account.headers)


# -- row 9: a sandbox links only to the caller's own chat session or run ----------------------------------------


@pytest.mark.parametrize("sandbox_settings", [{"backend": "local"}], indirect=True)
async def test_a_sandbox_links_only_to_your_own_chat_session_or_run(
    client: httpx.AsyncClient,
    upstream: ScriptedUpstream,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    upstream.push(Step(text=["hi"]))
    events = parse((await client.post("/api/v1/agent/chat/stream", json={"message": "hello"},
                                      headers=alice.headers)).text)  # fmt: skip
    session_id, run_id = events[0].data["session_id"], events[0].data["run_id"]
    assert session_id.startswith("chs_") and run_id.startswith("run_")

    for foreign in [session_id, run_id, "chs_" + "0" * 24, "run_" + "0" * 24, "usr_" + alice.id[4:], "mine", "chs_"]:
        response = await client.post(SANDBOXES, json={"session_id": foreign}, headers=bob.headers)
        assert response.status_code == 404, (foreign, response.text)
        assert response.json()["error"]["code"] == "not_found" and foreign not in response.json()["error"]["message"]
    assert (await client.get(SANDBOXES, params={"all": "true"}, headers=bob.headers)).json() == []

    for own in [session_id, run_id]:
        sandbox = await create(client, alice.headers, session_id=own)
        assert sandbox["session_id"] == own
        await client.delete(f"{SANDBOXES}/{sandbox['id']}", headers=alice.headers)


# -- row 10: engine errors come out as ours, never in the engine's words ----------------------------------------


async def test_a_sandbox_going_away_under_a_call_is_409_or_404_in_our_words(
    client: httpx.AsyncClient,
    app: FastAPI,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    sandbox = await create(client, account.headers)
    base = f"{SANDBOXES}/{sandbox['id']}"
    await client.put(f"{base}/files", params={"path": "f.txt"}, content=b"x", headers=account.headers)
    engine = docker.DockerClient(base_url=app.state.services.settings.sandbox.docker_host)
    (container,) = engine.containers.list(filters={"label": f"agent-ui.sandbox-id={sandbox['id']}"})

    calls = [
        ("GET", f"{base}/files", {}),
        ("GET", f"{base}/files", {"params": {"path": "f.txt"}}),
        ("PUT", f"{base}/files", {"params": {"path": "g.txt"}, "content": b"y"}),
        ("POST", f"{base}/exec", {"json": {"command": "true"}}),
    ]
    container.stop(timeout=0)  # where a destroy is when it has stopped the container and not yet removed it
    for method, path, kwargs in calls:
        response = await client.request(method, path, headers=account.headers, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 409, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "sandbox_not_running" and not ENGINE_ID.search(error["message"]), error
    streamed = await client.post(f"{base}/exec", json={"command": "true", "stream": True}, headers=account.headers)
    assert not ENGINE_ID.search(streamed.text)
    if streamed.status_code == 200:  # the stream had begun: it ends with our error event
        assert parse(streamed.text)[-1].data["code"] == "sandbox_not_running"
    else:
        assert streamed.status_code == 409

    container.remove(force=True)  # and when it has removed it (its volume not yet)
    for method, path, kwargs in calls:
        response = await client.request(method, path, headers=account.headers, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 404, (method, path, response.text)
        assert not ENGINE_ID.search(response.json()["error"]["message"])
    assert (await client.delete(base, headers=account.headers)).status_code == 204
    # The volume the interrupted destroy left goes at the next heartbeat's recovery, not at the next start.
    await app.state.services.core.instance.recover()
    assert await engine_holds(app, user_id=account.id) == []


async def test_calls_racing_a_destroy_never_show_the_engines_words(
    client: httpx.AsyncClient,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    """The reported race: reads (and writes, and commands) while the sandbox is destroyed. Each answers, 404 or
    409 in our words; none is a 400 "the engine refused: Container <id> is not running", a 503 or a 500."""
    account = await make_account()
    for _ in range(3):
        base = f"{SANDBOXES}/{(await create(client, account.headers))['id']}"
        await client.put(f"{base}/files", params={"path": "f.txt"}, content=b"x", headers=account.headers)
        calls = [
            ("GET", f"{base}/files", {}),
            ("GET", f"{base}/files", {"params": {"path": "f.txt"}}),
            ("PUT", f"{base}/files", {"params": {"path": "g.txt"}, "content": b"y"}),
            ("POST", f"{base}/exec", {"json": {"command": "true"}}),
        ]

        async def call(index: int, calls: list = calls) -> httpx.Response:  # type: ignore[type-arg]
            await asyncio.sleep(index * 0.02)
            method, path, kwargs = calls[index % len(calls)]
            return await client.request(method, path, headers=account.headers, **kwargs)

        racing = [asyncio.ensure_future(call(index)) for index in range(24)]
        destroyed = await client.delete(base, headers=account.headers)
        assert destroyed.status_code == 204
        for response in await asyncio.gather(*racing):
            assert response.status_code in (200, 404, 409), response.text
            if response.status_code != 200:
                message = response.json()["error"]["message"]
                assert not ENGINE_ID.search(message) and "engine refused" not in message, message


# -- the schema names every status a route can answer -------------------------------------------------------------


async def test_the_schema_documents_each_sandbox_routes_statuses(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    base = "/api/v1/agent/sandboxes"
    expected = {
        ("post", base): {"201", "402", "404", "422", "429", "503"},
        ("get", base): {"200", "503"},
        ("get", base + "/{sandbox_id}"): {"200", "404", "503"},
        ("delete", base + "/{sandbox_id}"): {"204", "404", "503"},
        ("post", base + "/{sandbox_id}/keepalive"): {"200", "402", "404", "503"},
        ("post", base + "/{sandbox_id}/exec"): {"200", "404", "409", "422", "429", "503"},
        ("get", base + "/{sandbox_id}/files"): {"200", "404", "409", "422", "503"},
        ("put", base + "/{sandbox_id}/files"): {"200", "404", "409", "413", "422", "429", "503"},
        ("post", base + "/{sandbox_id}/terminals"): {"201", "404", "422", "429", "503"},
        ("get", base + "/{sandbox_id}/terminals"): {"200", "404", "503"},
        ("get", base + "/{sandbox_id}/terminals/{terminal_id}"): {"200", "404", "503"},
        ("delete", base + "/{sandbox_id}/terminals/{terminal_id}"): {"204", "404", "503"},
    }
    documented = {
        (method, path): set(operation["responses"])
        for path, operations in paths.items()
        if path.startswith(base)
        for method, operation in operations.items()
    }
    assert set(documented) == set(expected)
    missing = {route: expected[route] - documented[route] for route in expected if expected[route] - documented[route]}
    assert missing == {}
    for route in expected:
        for status in expected[route] - {"200", "201", "204"}:
            schema = paths[route[1]][route[0]]["responses"][status]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorEnvelope"), (route, status)
