"""Chat grounded in resources: the turn searches them first, numbers what it found as citations, the answer cites
them, and the citation points at the chunk holding the passage (page 7 of the PDF), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.agent_ui.api.v1.test_tool_scopes import key_with
from tests.services.rag.files import PAGE7_SENTENCE, ten_page_pdf
from tests.sse import Event, parse, text_of, types
from tests.upstream import ScriptedUpstream, Step, words

STREAM = "/api/v1/agent/chat/stream"
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
RAG = "/api/v1/agent/rag"
QUESTION = "What does the heron ledger of Quillbrook record?"


async def ready_pdf(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    created = await client.post(f"{RAG}/resources", headers=headers,
                                files={"file": ("handbook.pdf", ten_page_pdf(), "application/pdf")})  # fmt: skip
    assert created.status_code == 202, created.text
    resource_id = created.json()["id"]
    async with asyncio.timeout(60):
        while (found := (await client.get(f"{RAG}/resources/{resource_id}", headers=headers)).json())[
            "status"
        ] == "processing":
            await asyncio.sleep(0.05)
    assert found["status"] == "ready", found
    return str(resource_id)


async def turn(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> list[Event]:
    response = await client.post(STREAM, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return parse(response.text)


def citations(events: list[Event]) -> list[dict[str, Any]]:
    return [event.data for event in events if event.type == "citation"]


async def test_a_grounded_turn_cites_the_page_that_holds_the_answer(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    resource_id = await ready_pdf(client, alice.headers)
    upstream.push(Step(text=words("It records seventeen copper bells [1].")))
    events = await turn(client, alice.headers, message=QUESTION, rag_resource_ids=[resource_id])

    # The search runs first, its passages are numbered citations before any text, then the answer streams.
    kinds = types(events)
    assert kinds[:2] == ["run", "tool_call"] and kinds[-1] == "done"
    assert kinds.index("citation") < kinds.index("tool_result") < kinds.index("content.delta")
    call = events[1].data
    assert call["name"] == "rag_search" and call["source"] == "rag"
    assert json.loads(call["arguments"]) == {"query": QUESTION, "resource_ids": [resource_id]}
    found = citations(events)
    assert [c["n"] for c in found] == list(range(1, len(found) + 1))
    first = found[0]
    assert first["resource_id"] == resource_id and first["title"] == "handbook"
    assert first["position"]["page"] == 7 and "Quillbrook" in first["snippet"]
    assert text_of(events) == "It records seventeen copper bells [1]."

    # The model was given the passage, numbered as the citation is.
    tool_message = next(m for m in upstream.requests[-1]["messages"] if m["role"] == "tool")
    passages = json.loads(tool_message["content"])["passages"]
    assert passages[0]["n"] == 1 and PAGE7_SENTENCE in " ".join(passages[0]["text"].split())

    # The citation opens page 7, the passage marked within it.
    opened = (await client.get(f"{RAG}/resources/{resource_id}/chunks/{first['chunk_id']}/passage",
                               headers=alice.headers)).json()  # fmt: skip
    assert opened["page"] == 7
    start, end = opened["highlight"]
    assert PAGE7_SENTENCE in " ".join(opened["text"][start:end].split())

    # The answer is stored with its citations.
    session = events[0].data["session_id"]
    detail = (await client.get(f"/api/v1/agent/chat/sessions/{session}", headers=alice.headers)).json()
    stored = [part for part in detail["messages"][-1]["content"] if part["type"] == "citation"]
    assert [(part["n"], part["chunk_id"]) for part in stored] == [(c["n"], c["chunk_id"]) for c in found]


@SQLITE_ONLY  # what the model reads and writes; the database plays no part
async def test_an_answer_that_cites_nothing_is_attributed_to_the_passage_it_drew_on(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    resource_id = await ready_pdf(client, alice.headers)
    upstream.push(Step(text=words("The heron ledger of Quillbrook records seventeen copper bells.")))
    events = await turn(client, alice.headers, message=QUESTION, rag_resource_ids=[resource_id],
                        model="scripted-router")  # fmt: skip
    answer = text_of(events)
    n = int(answer.rsplit("[", 1)[1].rstrip("]"))
    cited = next(c for c in citations(events) if c["n"] == n)
    assert cited["position"]["page"] == 7
    # The router-style model read the passages before the question, each with its number and page.
    note = upstream.requests[-1]["messages"][-1]["content"]
    assert note.endswith(f"Question: {QUESTION}")
    assert "[1] (handbook, page 7)" in note and PAGE7_SENTENCE in " ".join(note.split())


@SQLITE_ONLY  # what the model reads and writes; the database plays no part
async def test_an_unrelated_answer_gets_no_made_up_citation(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice = await make_account()
    resource_id = await ready_pdf(client, alice.headers)
    upstream.push(Step(text=words("I cannot tell from these documents.")))
    events = await turn(client, alice.headers, message=QUESTION, rag_resource_ids=[resource_id])
    assert text_of(events) == "I cannot tell from these documents."


async def test_grounding_in_resources_that_are_not_yours_or_without_the_scope_is_refused(
    client: httpx.AsyncClient, make_account, upstream: ScriptedUpstream  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    resource_id = await ready_pdf(client, alice.headers)
    foreign = await client.post(STREAM, headers=bob.headers, json={"message": QUESTION,
                                                                   "rag_resource_ids": [resource_id]})  # fmt: skip
    assert foreign.status_code == 404, foreign.text
    missing = await client.post(STREAM, headers=alice.headers, json={"message": QUESTION,
                                                                     "rag_resource_ids": ["rsc_nope"]})  # fmt: skip
    assert missing.status_code == 404
    chat_only = await key_with(client, alice.headers, "chat")
    denied = await client.post(STREAM, headers=chat_only, json={"message": QUESTION,
                                                                "rag_resource_ids": [resource_id]})  # fmt: skip
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "insufficient_scope"
    sessions = (await client.get("/api/v1/agent/chat/sessions", headers=bob.headers)).json()
    assert sessions["items"] == []  # a refused turn leaves nothing behind
