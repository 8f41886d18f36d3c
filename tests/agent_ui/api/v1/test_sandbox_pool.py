"""The warm pool on both backends: hand-out on create, refill, one owner per sandbox, nothing left at stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from main import create_app
from services.sandbox import SandboxService
from services.sandbox.base import SandboxBackend
from services.settings import Settings
from tests.conftest import nicegui_reset_globals, started

# The database plays no part here (its own tests run on SQLite and PostgreSQL): SQLite only, to keep the suite fast.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SANDBOXES = "/api/v1/agent/sandboxes"


@pytest.fixture(params=["local", "docker"])
def sandbox_settings(request: pytest.FixtureRequest) -> dict:  # type: ignore[type-arg]
    extra = {"docker_host": request.getfixturevalue("docker_engine")} if request.param == "docker" else {}
    return {"backend": request.param, "warm_pool": {request.param: 2}, "default_memory_mb": 256, **extra}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Started and stopped by the test itself, which then checks what the stop left behind."""
    with nicegui_reset_globals():
        yield create_app(settings)


async def unowned(backend: SandboxBackend, handed: set[str]) -> set[str]:
    """Sandboxes started without an owner and not handed out yet: the pool's (labels are set at start)."""
    return {s.sandbox_id for s in await backend.list_labelled() if not s.user_id} - handed


async def wait_for_pool(service: SandboxService, size: int, handed: set[str]) -> set[str]:
    """Until the engine holds ``size`` pooled sandboxes and the pool has taken them in (a container shows on the
    engine a moment before its create call returns to the pool)."""
    for _ in range(300):
        pooled = await unowned(service.backend, handed)
        if len(pooled) == size and service.pool.ready == size:
            return pooled
        await asyncio.sleep(0.05)
    raise AssertionError(f"the pool never held {size} sandboxes (it has {len(pooled)})")


async def test_creates_take_warm_sandboxes_the_pool_refills_and_stop_destroys_it(
    app: FastAPI, client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    async with started(app):
        service = app.state.services.get(SandboxService)
        backend = service.backend
        handed: set[str] = set()
        pooled = await wait_for_pool(service, 2, handed)
        detail = (await client.get("/api/v1/health")).json()["dependencies"]["docker"]["detail"]
        assert "warm pool 2/2" in detail

        alice = await make_account()
        first = (await client.post(SANDBOXES, json={}, headers=alice.headers)).json()
        assert first["id"] in pooled and first["status"] == "running"
        handed.add(first["id"])
        ran = await client.post(f"{SANDBOXES}/{first['id']}/exec", json={"command": "id -u; echo secret > mine"},
                                headers=alice.headers)  # fmt: skip
        assert ran.json()["stdout"] == "1000\n"

        refilled = await wait_for_pool(service, 2, handed)
        assert len(refilled - pooled) == 1

        bob = await make_account()
        second = (await client.post(SANDBOXES, json={}, headers=bob.headers)).json()
        assert second["id"] in refilled
        handed.add(second["id"])
        listing = await client.post(f"{SANDBOXES}/{second['id']}/exec", headers=bob.headers,
                                    json={"command": "ls -A /workspace /workspace/.home"})  # fmt: skip
        empty = "/workspace:\n.home\n\n/workspace/.home:\n"  # nothing of alice's, an empty home of its own
        assert listing.json() | {"elapsed_ms": 0} == {"exit_code": 0, "stdout": empty, "stderr": "", "timed_out": False,
                                                      "truncated": False, "elapsed_ms": 0}  # fmt: skip
        assert (await client.get(f"{SANDBOXES}/{first['id']}", headers=bob.headers)).status_code == 404

        broke = await make_account()  # 24 hours cost more than the signup grant: 402, nothing recorded or used
        before = await wait_for_pool(service, 2, handed)
        refused = await client.post(SANDBOXES, json={"timeout_s": 86400}, headers=broke.headers)
        assert refused.status_code == 402
        assert (await client.get(SANDBOXES, params={"all": "true"}, headers=broke.headers)).json() == []
        assert (
            await unowned(backend, handed) == before
            and "warm pool 2/2" in ((await client.get("/api/v1/health")).json()["dependencies"]["docker"]["detail"])
        )

        asked = await client.post(SANDBOXES, json={"memory_mb": 300}, headers=alice.headers)
        assert asked.status_code == 201 and asked.json()["id"] not in pooled | refilled
        owned = {s.sandbox_id: s.user_id for s in await backend.list_labelled()}
        assert owned[asked.json()["id"]] == alice.id
        pooled_at_stop = await wait_for_pool(service, 2, handed)

    left = {s.sandbox_id for s in await backend.list_labelled()}
    assert left.isdisjoint(pooled_at_stop), "the app stopped with pooled sandboxes left"
    for sandbox in await backend.list_labelled():  # the users' own ones are reconciled at the next start
        await backend.destroy(sandbox.ref)
