"""Jobs through the public plug-in API: a capability defined here registers a job kind and a router (nothing
shared is touched), and its jobs queue, report progress (throttled), replay from Last-Event-ID, make artifacts
served with Range, cancel, and stay invisible to other users and to keys without the kind's scope."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from agent_ui.capabilities import WebCapability
from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from main import CAPABILITIES, create_app
from services.auth import Scope
from services.capabilities import Capability, Core
from services.jobs import JobContext, JobKind, JobRead
from services.settings import Settings
from tests.conftest import nicegui_reset_globals, started
from tests.sse import parse

JOBS = "/api/v1/agent/generation/jobs"
PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


class CountParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(ge=1, le=100_000)
    artifact: bool = False
    hold_s: float = Field(default=0, ge=0, le=120)


async def count(params: CountParams, job: JobContext) -> dict[str, Any]:
    for step in range(1, params.steps + 1):
        job.progress("counting", step, params.steps)
        if step % 100 == 0:
            await asyncio.sleep(0.005)
    made = None
    if params.artifact:
        made = await job.artifact(kind="file", filename="count.bin", media_type="application/octet-stream",
                                  data=PAYLOAD, title="What was counted")  # fmt: skip
    if params.hold_s:
        job.progress("holding", message="waiting to be cancelled")
        await asyncio.sleep(params.hold_s)
    return {"counted": params.steps, "artifact_id": made.id if made else None}


class CountingCapability(Capability):
    name = "counting"

    def __init__(self, core: Core) -> None:
        self.kind = JobKind(name="count", scope=Scope.GENERATION, params=CountParams, run=count)

    def job_kinds(self) -> list[JobKind[Any]]:
        return [self.kind]


router = api_router(prefix="/counting", tags=["counting"], guard=RequireScope(Scope.GENERATION))


@router.post("", status_code=202)
async def submit(body: CountParams, principal: CurrentPrincipal, services: ServicesDep) -> JobRead:
    return await services.jobs.submit(principal, "count", body)


COUNTING = WebCapability(name="counting", build=CountingCapability, routers=[router])


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    settings = settings.model_copy(update={"jobs": settings.jobs.model_copy(update={"max_heavy": 1})})
    with nicegui_reset_globals():
        application = create_app(settings, capabilities=[*CAPABILITIES, COUNTING])
        async with started(application):
            yield application


async def submitted(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/agent/counting", json=params, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


async def until(client: httpx.AsyncClient, headers: dict[str, str], job_id: str, *statuses: str) -> dict[str, Any]:
    for _ in range(500):
        job = (await client.get(f"{JOBS}/{job_id}", headers=headers)).json()
        if job["status"] in statuses:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


async def test_progress_is_throttled_in_order_replays_from_last_event_id_and_the_artifact_seeks(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    job = await submitted(client, account.headers, steps=3000, artifact=True)
    assert job["kind"] == "count" and job["status"] in ("queued", "running")
    done = await until(client, account.headers, job["id"], "done", "failed")
    assert done["status"] == "done" and done["fraction"] == 1.0
    assert done["result"] == {"counted": 3000, "artifact_id": done["artifacts"][0]["id"]}

    events = parse((await client.get(f"{JOBS}/{job['id']}/events", headers=account.headers)).text)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "done" and events[-1].data["finish_reason"] == "stop"
    counting = [e.data for e in events if e.type == "progress" and e.data["stage"] == "counting"]
    assert [p["done"] for p in counting] == sorted(p["done"] for p in counting)
    assert counting[-1] == {"stage": "counting", "done": 3000, "total": 3000, "message": None}
    elapsed = _seconds(done["finished_at"]) - _seconds(done["started_at"])
    assert len(counting) <= 3 + 10 * elapsed, (len(counting), elapsed)  # ~10 a second, not 3,000
    artifact_event = next(e.data for e in events if e.type == "artifact")
    assert artifact_event["kind"] == "file" and artifact_event["title"] == "What was counted"

    replay = await client.get(f"{JOBS}/{job['id']}/events", headers={**account.headers, "Last-Event-ID": "2"})
    assert [e.id for e in parse(replay.text)] == [e.id for e in events[2:]]
    generic = await client.get(f"/api/v1/agent/runs/{job['id']}/events?after=2", headers=account.headers)
    assert [e.id for e in parse(generic.text)] == [e.id for e in events[2:]]

    url = artifact_event["url"]
    whole = await client.get(url, headers=account.headers)
    assert whole.status_code == 200 and whole.content == PAYLOAD
    assert whole.headers["content-disposition"] == 'attachment; filename="count.bin"'
    assert done["artifacts"][0]["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    part = await client.get(url, headers={**account.headers, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == PAYLOAD[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(PAYLOAD)}"
    tail = await client.get(url, headers={**account.headers, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == PAYLOAD[-10:]


async def test_a_heavy_job_waits_for_the_one_before_and_cancel_stops_either(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    first = await submitted(client, account.headers, steps=10, artifact=True, hold_s=60)
    await until(client, account.headers, first["id"], "running")
    second = await submitted(client, account.headers, steps=10, hold_s=60)
    third = await submitted(client, account.headers, steps=10)
    await asyncio.sleep(0.2)
    assert (await client.get(f"{JOBS}/{second['id']}", headers=account.headers)).json()["status"] == "queued"

    waiting = await client.post(f"{JOBS}/{third['id']}/cancel", headers=account.headers)
    assert waiting.status_code == 202 and waiting.json()["status"] == "cancelled"
    running = await client.post(f"{JOBS}/{first['id']}/cancel", headers=account.headers)
    assert running.status_code == 202 and running.json()["status"] == "cancelled"
    assert len(running.json()["artifacts"]) == 1  # what it made before is kept
    events = parse((await client.get(f"{JOBS}/{first['id']}/events", headers=account.headers)).text)
    assert events[-1].type == "done" and events[-1].data["finish_reason"] == "cancelled"
    again = await client.post(f"{JOBS}/{first['id']}/cancel", headers=account.headers)
    assert again.status_code == 409

    await until(client, account.headers, second["id"], "running")  # its turn came
    stopped = await client.post(f"/api/v1/agent/runs/{second['id']}/stop", headers=account.headers)
    assert stopped.status_code == 202
    assert (await until(client, account.headers, second["id"], "cancelled"))["status"] == "cancelled"
    listed = (await client.get(JOBS, headers=account.headers)).json()["items"]
    assert [j["id"] for j in listed] == [third["id"], second["id"], first["id"]]

    deleted = await client.delete(f"{JOBS}/{first['id']}", headers=account.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{JOBS}/{first['id']}", headers=account.headers)).status_code == 404
    artifact = running.json()["artifacts"][0]["id"]
    assert (await client.get(f"/api/v1/agent/artifacts/{artifact}", headers=account.headers)).status_code == 404


async def test_other_users_and_keys_without_the_scope_see_nothing(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    owner, other = await make_account(), await make_account()
    job = await submitted(client, owner.headers, steps=5, artifact=True)
    done = await until(client, owner.headers, job["id"], "done")
    artifact = done["artifacts"][0]["id"]
    for path in (f"{JOBS}/{job['id']}", f"{JOBS}/{job['id']}/events", f"/api/v1/agent/runs/{job['id']}",
                 f"/api/v1/agent/artifacts/{artifact}", f"/api/v1/agent/artifacts/{artifact}/meta"):  # fmt: skip
        response = await client.get(path, headers=other.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.post(f"{JOBS}/{job['id']}/cancel", headers=other.headers)).status_code == 404
    assert (await client.get(JOBS, headers=other.headers)).json()["items"] == []

    created = await client.post("/api/v1/agent/api-keys", json={"name": "chat only", "scopes": ["chat"]},
                                headers=owner.headers)  # fmt: skip
    chat_key = {"Authorization": f"Bearer {created.json()['api_key']}"}
    for path in (JOBS, f"/api/v1/agent/runs/{job['id']}", f"/api/v1/agent/artifacts/{artifact}"):
        response = await client.get(path, headers=chat_key)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "insufficient_scope"
    refused = await client.post("/api/v1/agent/counting", json={"steps": 1}, headers=chat_key)
    assert refused.status_code == 403


async def test_bad_parameters_are_422_before_anything_is_queued(
    client: httpx.AsyncClient, make_account
) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    for body in ({"steps": 0}, {"steps": 1, "unknown": True}, {}):
        response = await client.post("/api/v1/agent/counting", json=body, headers=account.headers)
        assert response.status_code == 422, response.text
    assert (await client.get(JOBS, headers=account.headers)).json()["items"] == []


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()
