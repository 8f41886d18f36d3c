"""Sandboxes over the API, on the real Docker engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from tests.sse import parse

SANDBOXES = "/api/v1/agent/sandboxes"
# Creates, holds and the quota run on both databases; the rest exercise the sandbox, not the database.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def sandbox_settings(request: pytest.FixtureRequest, docker_engine: str) -> dict:  # type: ignore[type-arg]
    """On for this module, on the test engine; a test may change some of it (indirect parametrization)."""
    changes = getattr(request, "param", None) or {}
    return {
        "backend": "docker", "docker_host": docker_engine, "max_live_per_user": 2, "default_memory_mb": 256,
        "disk_mb": 20, "warm_pool": {"docker": 0, "local": 0}, **changes,
    }  # fmt: skip


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> dict:  # type: ignore[type-arg]
    response = await client.post(SANDBOXES, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_run_move_files_and_destroy(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    sandbox = await create(client, account.headers)
    assert sandbox["status"] == "running" and sandbox["backend"] == "docker" and sandbox["network"] is False
    base = f"{SANDBOXES}/{sandbox['id']}"

    ran = await client.post(f"{base}/exec", json={"command": 'python3 -c "print(6*7)"'}, headers=account.headers)
    assert ran.status_code == 200 and ran.json()["stdout"] == "42\n" and ran.json()["exit_code"] == 0

    put = await client.put(f"{base}/files", params={"path": "notes/hello.txt"}, content=b"hello\x00world",
                           headers=account.headers)  # fmt: skip
    assert put.status_code == 200 and put.json()["size"] == 11
    got = await client.get(f"{base}/files", params={"path": "notes/hello.txt"}, headers=account.headers)
    assert got.status_code == 200 and got.content == b"hello\x00world"
    listing = (await client.get(f"{base}/files", headers=account.headers)).json()
    assert [(e["name"], e["type"]) for e in listing["entries"]] == [(".home", "dir"), ("notes", "dir")]

    streamed = await client.post(f"{base}/exec", json={"command": "echo one; echo two >&2; exit 3", "stream": True},
                                 headers=account.headers)  # fmt: skip
    events = parse(streamed.text)
    for stream, text in [("stdout", "one\n"), ("stderr", "two\n")]:  # chunk boundaries are not the contract
        assert "".join(e.data["text"] for e in events if e.type == "output" and e.data["stream"] == stream) == text
    assert events[-1].type == "done" and events[-1].data["exit_code"] == 3

    detail = (await client.get(base, headers=account.headers)).json()
    assert detail["disk_used_bytes"] > 0
    kept = await client.post(f"{base}/keepalive", headers=account.headers)
    assert kept.status_code == 200 and kept.json()["expires_at"] >= sandbox["expires_at"]
    assert (await client.delete(base, headers=account.headers)).status_code == 204
    assert (await client.get(SANDBOXES, headers=account.headers)).json() == []
    assert (await client.post(f"{base}/exec", json={"command": "true"}, headers=account.headers)).status_code == 404
    balance = (await client.get("/api/v1/agent/credits/balance", headers=account.headers)).json()
    assert Decimal(balance["balance"]) < 10 and Decimal(balance["held"]) == 0  # minutes charged, holds released


@SQLITE_ONLY
@pytest.mark.parametrize("sandbox_settings", [{"backend": "docker"}, {"backend": "local"}], indirect=True)
async def test_paths_may_not_leave_the_workspace(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    base = f"{SANDBOXES}/{(await create(client, account.headers))['id']}"
    await client.post(
        f"{base}/exec", json={"command": "ln -s /etc escape; ln -s /etc/passwd pw"}, headers=account.headers
    )
    for path in ["../etc/passwd", "/etc/passwd", "a/../../etc", "escape/passwd", "pw", "escape"]:
        response = await client.get(f"{base}/files", params={"path": path}, headers=account.headers)
        assert response.status_code == 422, path
        assert response.json()["error"]["code"] == "path_outside_workspace"
    put = await client.put(f"{base}/files", params={"path": "escape/evil"}, content=b"x", headers=account.headers)
    assert put.status_code == 422
    missing = await client.get(f"{base}/files", params={"path": "nope.txt"}, headers=account.headers)
    assert missing.status_code == 404
    await client.delete(base, headers=account.headers)


async def test_others_sandboxes_are_404_and_the_quota_is_429(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    alice, bob = await make_account(), await make_account()
    first, second = await create(client, alice.headers), await create(client, alice.headers)
    third = await client.post(SANDBOXES, json={}, headers=alice.headers)
    assert third.status_code == 429 and third.json()["error"]["code"] == "sandbox_quota"
    base = f"{SANDBOXES}/{first['id']}"
    calls = [
        ("GET", base, {}), ("DELETE", base, {}), ("POST", f"{base}/keepalive", {}),
        ("POST", f"{base}/exec", {"json": {"command": "id"}}), ("GET", f"{base}/files", {}),
        ("PUT", f"{base}/files?path=x", {"content": b"x"}),
    ]  # fmt: skip
    for method, path, kwargs in calls:
        assert (await client.request(method, path, headers=bob.headers, **kwargs)).status_code == 404, (method, path)
    assert (await client.get(SANDBOXES, headers=bob.headers)).json() == []
    for sandbox in (first, second):
        await client.delete(f"{SANDBOXES}/{sandbox['id']}", headers=alice.headers)


@SQLITE_ONLY
async def test_bad_requests(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    for body in [
        {"network": True},
        {"memory_mb": 999_999},
        {"timeout_s": 5},
        {"template": "cobol"},
        {"env": {"1BAD": "x"}},
    ]:
        response = await client.post(SANDBOXES, json=body, headers=account.headers)
        assert response.status_code == 422, body
    assert (await client.post(SANDBOXES, json={})).status_code == 401


@SQLITE_ONLY
@pytest.mark.parametrize("sandbox_settings", [{"backend": "docker"}, {"backend": "local"}], indirect=True)
async def test_writing_past_the_disk_quota_is_stopped(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    base = f"{SANDBOXES}/{(await create(client, account.headers))['id']}"
    big = await client.put(
        f"{base}/files", params={"path": "big"}, content=b"x" * (21 * 2**20), headers=account.headers
    )
    assert big.status_code == 429 and big.json()["error"]["code"] == "disk_quota"
    filled = await client.post(f"{base}/exec", json={"command": "dd if=/dev/zero of=f bs=1M count=60"},
                               headers=account.headers)  # fmt: skip
    assert filled.status_code == 429 and filled.json()["error"]["code"] == "disk_quota"
    assert (await client.get(base, headers=account.headers)).json()["destroy_reason"] == "disk quota exceeded"

    # Streamed, and still writing when the watch looks: stopped mid-way, the stream ends with an error event.
    base = f"{SANDBOXES}/{(await create(client, account.headers))['id']}"
    slow_fill = "for i in $(seq 100); do dd if=/dev/zero of=f$i bs=1M count=1 2>/dev/null; echo $i; sleep 0.05; done"
    streamed = await client.post(f"{base}/exec", json={"command": slow_fill, "stream": True}, headers=account.headers)
    events = parse(streamed.text)
    assert events[-1].type == "error" and events[-1].data["code"] == "disk_quota"
    written = [int(e.data["text"].split()[-1]) for e in events if e.type == "output"]
    assert written and max(written) < 100  # stopped before the end
    assert (await client.get(base, headers=account.headers)).json()["destroy_reason"] == "disk quota exceeded"


@SQLITE_ONLY
@pytest.mark.parametrize("sandbox_settings", [{"docker_host": "unix:///nonexistent/docker.sock"}], indirect=True)
async def test_an_engine_that_does_not_answer_gives_503(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    response = await client.post(SANDBOXES, json={}, headers=account.headers)
    assert response.status_code == 503 and "does not answer" in response.json()["error"]["message"]
    assert (await client.get("/api/v1/health")).json()["dependencies"]["docker"]["status"] == "down"
    assert Decimal((await client.get("/api/v1/agent/credits/balance", headers=account.headers)).json()["held"]) == 0


@SQLITE_ONLY
@pytest.mark.parametrize("sandbox_settings", [{"image": "localhost/agent-ui-sandbox:missing"}], indirect=True)
async def test_a_missing_image_gives_503_naming_the_command(
    client: httpx.AsyncClient,
    make_account,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    response = await client.post(SANDBOXES, json={}, headers=account.headers)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "sandbox_image_missing"
    assert "agent-ui sandbox build-image" in response.json()["error"]["message"]


@SQLITE_ONLY
@pytest.mark.parametrize("sandbox_settings", [{"backend": "local"}], indirect=True)
async def test_the_local_backend_serves_the_same_api(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    sandbox = await create(client, account.headers)
    assert sandbox["backend"] == "local"
    base = f"{SANDBOXES}/{sandbox['id']}"
    ran = await client.post(f"{base}/exec", json={"command": 'python3 -c "print(6*7)"'}, headers=account.headers)
    assert ran.json()["stdout"] == "42\n"
    await client.put(f"{base}/files", params={"path": "d/x.txt"}, content=b"local", headers=account.headers)
    assert (await client.get(f"{base}/files", params={"path": "d/x.txt"}, headers=account.headers)).content == b"local"
    made = await client.post(f"{base}/exec", json={"command": "cat d/x.txt; ln -s /etc out"}, headers=account.headers)
    assert made.json()["stdout"] == "local"
    escape = await client.get(f"{base}/files", params={"path": "out/passwd"}, headers=account.headers)
    assert escape.status_code == 422
    health = (await client.get("/api/v1/health")).json()["dependencies"]["docker"]
    assert health["status"] == "ok" and health["detail"].startswith("local backend")
    assert (await client.delete(base, headers=account.headers)).status_code == 204


@pytest.mark.parametrize(
    "sandbox_settings", [{"backend": "auto", "docker_host": "unix:///nonexistent/docker.sock"}], indirect=True
)
@SQLITE_ONLY
async def test_auto_falls_back_to_local_and_says_why(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    config = (await client.get("/api/v1/agent/config", headers=account.headers)).json()
    detail = config["capabilities"]["sandboxes"]["detail"]
    assert detail.startswith("local backend") and "docker" in detail and "does not answer" in detail
    sandbox = await create(client, account.headers)
    assert sandbox["backend"] == "local"
    await client.delete(f"{SANDBOXES}/{sandbox['id']}", headers=account.headers)
