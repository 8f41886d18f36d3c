"""A native tool call runs code in the session's own sandbox and the result returns to the model."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.sse import parse, text_of, types
from tests.upstream import ScriptedUpstream, Step, words

# The database plays no part here (its own tests run on SQLite and PostgreSQL): SQLite only, to keep the suite fast.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

STREAM = "/api/v1/agent/chat/stream"


@pytest.fixture
def sandbox_settings() -> dict:  # type: ignore[type-arg]
    return {"backend": "local"}


async def test_sandbox_tools_run_in_the_sessions_sandbox(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(
        Step(tool_calls=[("sandbox_write_file", {"path": "calc.py", "content": "print(6*7)"})]),
        Step(tool_calls=[("sandbox_exec", {"command": "python3 calc.py"})]),
        Step(text=words("The program printed 42.")),
    )
    events = parse((await client.post(STREAM, json={"message": "compute 6*7 in python"}, headers=account.headers)).text)
    tool_round = ["usage", "tool_call", "tool_result"]
    assert types(events) == ["run", *tool_round, *tool_round, "content.delta", "usage", "done"]
    calls = [e.data for e in events if e.type == "tool_call"]
    results = [e.data for e in events if e.type == "tool_result"]
    assert [c["source"] for c in calls] == ["sandbox", "sandbox"]
    assert all(r["ok"] for r in results), results
    assert results[1]["output"]["stdout"] == "42\n" and results[1]["output"]["exit_code"] == 0
    assert json.loads(upstream.requests[2]["messages"][-1]["content"])["stdout"] == "42\n"
    assert text_of(events) == "The program printed 42."

    # The same session keeps its sandbox; it is listed as the user's.
    session_id = events[0].data["session_id"]
    upstream.push(Step(tool_calls=[("sandbox_read_file", {"path": "calc.py"})]), Step(text=["ok"]))
    again = parse((await client.post(STREAM, json={"message": "show it", "session_id": session_id},
                                     headers=account.headers)).text)  # fmt: skip
    read = next(e.data for e in again if e.type == "tool_result")
    assert read["ok"] and read["output"]["content"] == "print(6*7)"
    assert read["output"]["path"] == "calc.py"
    listed = (await client.get("/api/v1/agent/sandboxes", headers=account.headers)).json()
    assert len(listed) == 1 and listed[0]["session_id"] == session_id and listed[0]["backend"] == "local"
    assert results[0]["output"]["sandbox_id"] == listed[0]["id"]
