"""Two app processes on one PostgreSQL: each recovers only the work of instances that are gone.

Restarting the second never touches the first's running turn, credit hold or sandbox; once the first is killed
with kill -9, the second recovers its work (the run interrupted, holds released, the sandbox destroyed and paid).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import _truncate_all, scripted_llm
from tests.live_server import live_server
from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step, words

ACCOUNT = {"email": "two@example.com", "password": "correct horse battery"}


async def wait_for(check: Any, what: str, timeout_s: float = 20) -> Any:
    for _ in range(int(timeout_s / 0.1)):
        if found := await check():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_restart_of_one_instance_leaves_the_others_work_and_a_killed_ones_is_recovered(
    tmp_path: Path, pg_database: str, upstream: ScriptedUpstream
) -> None:
    env = {"AGENT_UI_LLM": json.dumps(scripted_llm(upstream)), "AGENT_UI_INSTANCE__LEASE_TTL_S": "3",
           "AGENT_UI_SANDBOX__BACKEND": "local", "AGENT_UI_CREDITS__SIGNUP_GRANT": "100"}  # fmt: skip
    # A 2-minute answer (starting and stopping the servers takes its time): its call holds credits meanwhile.
    upstream.push(Step(text=words("slowly " * 1200), rate=10))
    try:
        with live_server(tmp_path / "a", database_url=pg_database, extra_env=env) as first:
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as a:
                await a.post("/api/v1/auth/register", json=ACCOUNT)
                await a.post("/api/v1/auth/login", json=ACCOUNT)
                cookies = dict(a.cookies)
                sandbox = (await a.post("/api/v1/agent/sandboxes", json={})).json()
                run_ids: list[str] = []

                async def chat() -> None:
                    async with a.stream("POST", "/api/v1/agent/chat/stream", json={"message": "go"}) as stream:
                        async for line in stream.aiter_lines():
                            if line.startswith("data:") and not run_ids:
                                run_ids.append(json.loads(line[5:])["run_id"])

                async def turn_started() -> bool:
                    return bool(run_ids)

                streaming = asyncio.ensure_future(chat())
                await wait_for(turn_started, "the turn to start")
                run_id = run_ids[0]
                held = await wait_for(lambda: _held(a), "the model call's hold and the sandbox's", timeout_s=10)

                async def untouched() -> None:
                    run = (await a.get(f"/api/v1/agent/runs/{run_id}")).json()
                    assert run["status"] == "running", run
                    assert await _held(a) >= held  # the call's hold grows in steps while it streams, never drops
                    assert (await a.get(f"/api/v1/agent/sandboxes/{sandbox['id']}")).json()["status"] == "running"
                    executed = await a.post(f"/api/v1/agent/sandboxes/{sandbox['id']}/exec",
                                            json={"command": "echo alive"})  # fmt: skip
                    assert executed.json()["stdout"] == "alive\n"

                with live_server(tmp_path / "b", database_url=pg_database, extra_env=env) as second:
                    async with httpx.AsyncClient(base_url=second.url, cookies=cookies, timeout=30) as b:
                        assert (await b.get(f"/api/v1/agent/runs/{run_id}")).json()["status"] == "running"
                await untouched()  # the second stopped cleanly: it recovered nothing of the first's
                with live_server(tmp_path / "b", database_url=pg_database, extra_env=env) as second:  # restarted
                    await asyncio.sleep(1.5)  # its start and a heartbeat or more of its recovery
                    await untouched()
                    os.kill(first.pid, signal.SIGKILL)
                    streaming.cancel()
                    async with httpx.AsyncClient(base_url=second.url, cookies=cookies, timeout=30) as b:

                        async def recovered() -> dict[str, Any] | None:
                            run = (await b.get(f"/api/v1/agent/runs/{run_id}")).json()
                            return run if run["status"] == "interrupted" else None

                        run = await wait_for(recovered, "the killed instance's run to be recovered")
                        assert run["error"]["code"] == "interrupted"
                        gone = await wait_for(lambda: _destroyed(b, sandbox["id"]), "its sandbox to be destroyed")
                        assert gone["destroy_reason"] == "server restart"
                        balance = (await b.get("/api/v1/agent/credits/balance")).json()
                        assert float(balance["held"]) == 0
                        session = (await b.get("/api/v1/agent/chat/sessions")).json()["items"][0]
                        assert session["active_run_id"] is None  # free for the next turn
                        answer = (await b.get(f"/api/v1/agent/chat/sessions/{session['id']}")).json()["messages"][-1]
                        assert answer["status"] == "interrupted"
                        # It keeps the text streamed until the kill: what its run's event log holds.
                        events = (await b.get(f"/api/v1/agent/runs/{run_id}/events")).text
                        streamed = "".join(e.data["text"] for e in parse(events) if e.type == "content.delta")
                        assert streamed.startswith("slowly slowly ")
                        assert answer["content"] == [{"type": "text", "text": streamed}]
    finally:
        await _truncate_all(pg_database)


async def _held(client: httpx.AsyncClient) -> float:
    return float((await client.get("/api/v1/agent/credits/balance")).json()["held"])


async def _destroyed(client: httpx.AsyncClient, sandbox_id: str) -> dict[str, Any] | None:
    found = (await client.get(f"/api/v1/agent/sandboxes/{sandbox_id}")).json()
    return found if found["status"] == "destroyed" else None
