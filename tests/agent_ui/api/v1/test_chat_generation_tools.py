"""Generation tools in chat: the agent starts a deck and answers at once with the job's id (no tool waits on a
minutes-long job); the job goes on by itself, and stopping the turn does not cancel it."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.agent_ui.api.v1.test_jobs import until
from tests.agent_ui.api.v1.test_slides import WRITTEN, deck_steps
from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step

STREAM = "/api/v1/agent/chat/stream"
ASK = "Make me a deck about lighthouses please"


def job_steps(*, stall_s: float = 0.0) -> list[Step]:
    """The deck job's answers, taken only by its own requests (the turn calls the model meanwhile)."""
    outline, *slides = deck_steps(figures=False)  # a topic alone: no figures, no table or chart
    outline.match, outline.stall_s = "Plan a presentation", stall_s
    for slide in slides:
        slide.match = "You write presentation slides"
    return [outline, *slides]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_agent_starts_a_deck_and_answers_at_once(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    upstream.push(Step(tool_calls=[("generate_deck", {"topic": "lighthouses", "slide_count": 6})], match=ASK),
                  *job_steps(stall_s=1.0),
                  Step(text=["Your deck is on its way."], match="run_"))  # fmt: skip
    events = parse((await client.post(STREAM, json={"message": ASK}, headers=alice.headers)).text)
    call = next(e.data for e in events if e.type == "tool_call")
    assert call["name"] == "generate_deck" and call["source"] == "generation"
    result = next(e.data for e in events if e.type == "tool_result")
    assert result["ok"] is True and result["output"]["kind"] == "ppt", result
    job_id = result["output"]["job_id"]
    assert events[-1].type == "done"
    # the turn ended while the job was still planning (its first answer stalls a second)
    assert (await client.get(f"/api/v1/agent/generation/jobs/{job_id}", headers=alice.headers)).json()["status"] in (
        "queued", "running")
    job = await until(client, alice.headers, job_id, "done", "failed")
    assert job["status"] == "done" and job["result"]["slides"] == 6, job
    deck = (await client.get(f"/api/v1/agent/slides/{job_id}", headers=alice.headers)).json()
    assert [s["title"] for s in deck["slides"]][1:] == [s["title"] for s in WRITTEN]
    assert deck["slides"][3]["bullets"] == ["Pharos of Alexandria", "Eddystone", "Bell Rock"]
    # a topic alone has no figures: the plan may not ask for a table or a chart (a small model would invent them)
    planned = next(r for r in upstream.requests if "Plan a presentation" in json.dumps(r))
    layouts = json.dumps(planned["response_format"]["json_schema"]["schema"])
    assert '"bullets"' in layouts and '"table"' not in layouts and '"chart"' not in layouts


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_stopping_the_turn_leaves_the_job_going(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    upstream.push(Step(tool_calls=[("generate_deck", {"topic": "lighthouses", "slide_count": 6})], match=ASK),
                  *job_steps(stall_s=0.5),
                  Step(text=[f"w{i} " for i in range(200)], rate=20, match="run_"))  # fmt: skip
    turn = asyncio.ensure_future(client.post(STREAM, json={"message": ASK}, headers=alice.headers))
    job_id = None
    for _ in range(400):
        jobs = (await client.get("/api/v1/agent/generation/jobs", headers=alice.headers)).json()
        if jobs["items"]:
            job_id = jobs["items"][0]["id"]
            break
        await asyncio.sleep(0.05)
    assert job_id is not None, "the tool never started the job"
    session = (await client.get("/api/v1/agent/chat/sessions", headers=alice.headers)).json()["items"][0]
    stopped = await client.post(f"/api/v1/agent/runs/{session['active_run_id']}/stop", headers=alice.headers)
    assert stopped.status_code == 202, stopped.text
    events = parse((await turn).text)
    assert events[-1].type == "done" and events[-1].data["finish_reason"] == "cancelled"
    job = await until(client, alice.headers, job_id, "done", "failed", "cancelled")
    assert job["status"] == "done", job


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_model_without_native_tools_gets_the_deck_it_was_plainly_asked_for(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    """A small model writes the slides itself when asked for a deck: the turn reads the request and starts the deck
    without asking it, and the tool's sentence is the answer."""
    alice = await make_account()
    upstream.push(*job_steps())
    body = {"message": "Please make me a 6-slide presentation about lighthouses", "model": "scripted-router"}
    events = parse((await client.post(STREAM, json=body, headers=alice.headers)).text)
    call = next(e.data for e in events if e.type == "tool_call")
    assert call["name"] == "generate_deck" and json.loads(call["arguments"]) == {"topic": "lighthouses",
                                                                                 "slide_count": 6}  # fmt: skip
    job_id = next(e.data for e in events if e.type == "tool_result")["output"]["job_id"]
    assert "".join(e.data["text"] for e in events if e.type == "content.delta") == (
        "I started making a 6-slide deck about lighthouses: it shows up below with its progress, then its slides to "
        "open, edit and download.")
    assert events[-1].type == "done" and events[-1].data["finish_reason"] == "stop"
    job = await until(client, alice.headers, job_id, "done", "failed")
    assert job["status"] == "done", job
    assert all("Please make me" not in json.dumps(r) for r in upstream.requests)  # the chat model was never asked

    # a question about decks is the model's to answer, with no deck started
    upstream.push(Step(text=["Short, clear slides."]))
    asked = {"message": "What makes a good slide presentation?", "model": "scripted-router"}
    events = parse((await client.post(STREAM, json=asked, headers=alice.headers)).text)
    assert [e.type for e in events if e.type.startswith("tool")] == []
    assert len((await client.get("/api/v1/agent/generation/jobs", headers=alice.headers)).json()["items"]) == 1
