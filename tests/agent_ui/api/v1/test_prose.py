"""Prose over a real uvicorn: the text streams while it is written, is saved as markdown, can be stopped (what was
written is kept) and resumed from Last-Event-ID; grounded text gets its sources as citations; bad input is a JSON
error before any stream."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.agent_ui.api.v1.test_chat_live import Reader
from tests.agent_ui.api.v1.test_rag import ready
from tests.sse import parse, text_of
from tests.upstream import ScriptedUpstream, Step

AGENT = "/api/v1/agent"
PROSE = f"{AGENT}/generation/prose"
WORDS = [f"w{i} " for i in range(40)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_prose_streams_while_it_is_written_and_is_saved_as_markdown(
    served: str, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    upstream.push(Step(text=["# Tides\n\n", *WORDS], rate=40))  # about a second of text
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=f"http://{served}", timeout=30) as http:
        body = {"prompt": "write about tides", "style": "article", "length": "short"}
        async with http.stream("POST", PROSE, json=body, headers=alice.headers) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            reader = Reader(response)
            first = await reader.take(3)
            first_at = loop.time()
            rest = await reader.take()
            last_at = loop.time()
        events = first + rest
        assert [e.type for e in first] == ["run", "content.delta", "content.delta"]
        assert last_at - first_at > 0.5  # the first words came long before the end
        assert text_of(events) == "# Tides\n\n" + "".join(WORDS)
        assert [e.type for e in events][-3:] == ["artifact", "usage", "done"]
        artifact = next(e.data for e in events if e.type == "artifact")
        assert artifact["kind"] == "prose" and artifact["title"] == "Tides"
        saved = await http.get(artifact["url"], headers=alice.headers)
        assert saved.text == ("# Tides\n\n" + "".join(WORDS)).strip() + "\n"
        assert saved.headers["content-type"].startswith("text/markdown")
        # the style and length reached the model
        system = upstream.requests[-1]["messages"][0]["content"]
        assert "an article" in system and "about 150 words" in system

        run_id = first[0].data["run_id"]
        listed = (await http.get(PROSE, headers=alice.headers)).json()
        assert [r["id"] for r in listed] == [run_id] and listed[0]["result"]["artifact_id"] == artifact["id"]

        # resume after the fifth event: exactly the rest
        resumed = await http.get(f"{AGENT}/runs/{run_id}/events", headers={**alice.headers, "Last-Event-ID": "5"})
        assert [e.id for e in parse(resumed.text)] == [e.id for e in events if e.id > 5]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_stopping_prose_keeps_what_was_written(
    served: str, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    upstream.push(Step(text=[f"s{i} " for i in range(200)], rate=20))  # ten seconds unless stopped
    async with httpx.AsyncClient(base_url=f"http://{served}", timeout=30) as http:
        async with http.stream("POST", PROSE, json={"prompt": "a long story", "style": "story"},
                               headers=alice.headers) as response:  # fmt: skip
            reader = Reader(response)
            first = await reader.take(4)
            run_id = first[0].data["run_id"]
            assert (await http.post(f"{AGENT}/runs/{run_id}/stop", headers=bob.headers)).status_code == 404
            stopped = await http.post(f"{AGENT}/runs/{run_id}/stop", headers=alice.headers)
            assert stopped.status_code == 202, stopped.text
            rest = await reader.take()
        events = first + rest
        assert events[-1].type == "done" and events[-1].data["finish_reason"] == "cancelled"
        written = text_of(events).strip()
        assert 0 < len(written.split()) < 200
        artifact = next(e.data for e in events if e.type == "artifact")
        assert (await http.get(artifact["url"], headers=alice.headers)).text == written + "\n"
        run = (await http.get(f"{AGENT}/runs/{run_id}", headers=alice.headers)).json()
        assert run["status"] == "cancelled" and run["result"]["finish_reason"] == "cancelled"
        assert (await http.get(f"{AGENT}/runs/{run_id}/events", headers=bob.headers)).status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_grounded_prose_gets_its_sources_and_bad_input_a_json_error(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    created = await client.post(f"{AGENT}/rag/resources", headers=alice.headers,
                                json={"text": "Spring tides follow the full moon.", "title": "Tide notes"})  # fmt: skip
    resource = (await ready(client, alice.headers, created))["id"]
    upstream.push(Step(text=["Spring tides follow the full moon [1]."]))
    answer = await client.post(PROSE, json={"prompt": "summarise my notes", "style": "summary",
                                            "rag_resource_ids": [resource]}, headers=alice.headers)  # fmt: skip
    events = parse(answer.text)
    citation = next(e.data for e in events if e.type == "citation")
    assert citation["n"] == 1 and citation["resource_id"] == resource and citation["title"] == "Tide notes"
    prompt = upstream.requests[-1]["messages"]
    assert "[1] (Tide notes) Spring tides" in prompt[-1]["content"] and "cite" in prompt[0]["content"]
    assert events[-1].type == "done"

    for body, code, error in [
        ({"prompt": "  "}, 422, "validation_error"),
        ({"prompt": "x", "style": "sonnet"}, 422, "validation_error"),
        ({"prompt": "x", "length": "epic"}, 422, "validation_error"),
        ({"prompt": "x", "model": "no-such-model"}, 422, "unknown_model"),
        ({"prompt": "x", "rag_resource_ids": [resource]}, 404, "not_found"),  # bob asks with alice's resource
    ]:
        refused = await client.post(PROSE, json=body, headers=bob.headers)
        assert refused.status_code == code and refused.json()["error"]["code"] == error, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/json")
    assert (await client.get(PROSE, headers=bob.headers)).json() == []
