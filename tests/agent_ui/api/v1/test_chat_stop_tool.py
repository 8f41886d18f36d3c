"""Stop reaches a running tool: stopping a turn during a 60 s `sandbox_exec` ends the command and the turn within
2 s, on both sandbox backends (Docker cannot kill an exec itself: the backend kills the command's process tree)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step

STREAM = "/api/v1/agent/chat/stream"
TICKING = "for i in $(seq 1 60); do echo $i >> /workspace/ticks; sleep 1; done"


@pytest.fixture(params=["local", "docker"])
def sandbox_settings(request: pytest.FixtureRequest) -> dict:  # type: ignore[type-arg]
    extra = {"docker_host": request.getfixturevalue("docker_engine")} if request.param == "docker" else {}
    return {"backend": request.param, "warm_pool": {request.param: 0}, "default_memory_mb": 256, **extra}


async def ticks(client: httpx.AsyncClient, headers: dict[str, str], sandbox_id: str) -> int:
    response = await client.get(f"/api/v1/agent/sandboxes/{sandbox_id}/files?path=ticks", headers=headers)
    return len(response.text.split()) if response.status_code == 200 else 0


async def test_stop_during_a_long_command_kills_it_and_ends_the_turn(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream
) -> None:  # type: ignore[no-untyped-def]
    account = await make_account()
    upstream.push(Step(tool_calls=[("sandbox_exec", {"command": TICKING, "timeout_s": 120})]),
                  Step(text=["never asked for"]))  # fmt: skip
    turn = asyncio.ensure_future(client.post(STREAM, json={"message": "count slowly"}, headers=account.headers))

    sandbox_id = None
    for _ in range(400):  # until the command is running and has ticked
        listed = (await client.get("/api/v1/agent/sandboxes", headers=account.headers)).json()
        if listed and (sandbox_id := listed[0]["id"]) and await ticks(client, account.headers, sandbox_id) >= 1:
            break
        await asyncio.sleep(0.05)
    assert sandbox_id is not None, "the command never started"
    session = (await client.get("/api/v1/agent/chat/sessions", headers=account.headers)).json()["items"][0]
    run_id = session["active_run_id"]

    asked = time.monotonic()
    stopped = await client.post(f"/api/v1/agent/runs/{run_id}/stop", headers=account.headers)
    assert stopped.status_code == 202
    response = await asyncio.wait_for(turn, timeout=10)
    ended_in = time.monotonic() - asked
    assert ended_in < 2, f"the turn took {ended_in:.2f} s to end after stop"

    events = parse(response.text)
    result = next(e.data for e in events if e.type == "tool_result")
    assert result["ok"] is False and result["error"] == "stopped"
    assert events[-1].type == "done" and events[-1].data["finish_reason"] == "cancelled"
    assert len(upstream.requests) == 1  # the model was not asked again

    counted = await ticks(client, account.headers, sandbox_id)
    await asyncio.sleep(1.6)
    assert await ticks(client, account.headers, sandbox_id) == counted, "the command kept running after stop"
    run = (await client.get(f"/api/v1/agent/runs/{run_id}", headers=account.headers)).json()
    assert run["status"] == "cancelled" and run["kind"] == "chat"
