"""Chat over the API with the scripted upstream, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from fastapi import FastAPI

from services.chat import ChatService
from tests.sse import Event, parse, text_of, types
from tests.upstream import ScriptedUpstream, Step, words

STREAM = "/api/v1/agent/chat/stream"


async def turn(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> list[Event]:
    response = await client.post(STREAM, json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse(response.text)


def usage(events: list[Event], scope: str) -> list[dict[str, Any]]:
    return [event.data for event in events if event.type == "usage" and event.data["scope"] == scope]


async def test_a_turn_streams_in_order_and_is_persisted(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(text=words("Paris is the capital of France.")))
    events = await turn(client, account.headers, message="What is the capital of France?")

    assert types(events) == ["run", "content.delta", "usage", "done"]
    assert [event.id for event in events] == list(range(1, len(events) + 1))
    run = events[0].data
    assert set(run) == {"run_id", "session_id", "message_id", "model"} and run["model"] == "scripted"
    assert text_of(events) == "Paris is the capital of France."
    assert [u["scope"] for u in usage(events, "call") + usage(events, "total")] == ["call", "total"]
    assert events[-1].data["finish_reason"] == "stop" and events[-1].data["elapsed_ms"] >= 0
    assert usage(events, "total")[0]["balance"] == usage(events, "call")[-1]["balance"] > 0

    detail = (await client.get(f"/api/v1/agent/chat/sessions/{run['session_id']}", headers=account.headers)).json()
    assert detail["active_run_id"] is None and detail["model"] == "scripted"
    user_message, answer = detail["messages"]
    assert user_message["role"] == "user" and user_message["content"] == [
        {"type": "text", "text": "What is the capital of France?"}
    ]
    assert answer["id"] == run["message_id"] and answer["parent_id"] == user_message["id"]
    assert answer["content"] == [{"type": "text", "text": "Paris is the capital of France."}]
    assert answer["status"] == "complete"

    replay = await client.get(f"/api/v1/agent/chat/runs/{run['run_id']}/events", headers=account.headers)
    assert [(e.id, e.type, e.data) for e in parse(replay.text)] == [(e.id, e.type, e.data) for e in events]
    tail = await client.get(
        f"/api/v1/agent/chat/runs/{run['run_id']}/events", headers={**account.headers, "Last-Event-ID": "3"}
    )
    assert [e.id for e in parse(tail.text)] == [e.id for e in events[3:]]


async def test_the_second_turn_sends_the_history_with_the_system_prompt(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(text=["First answer."]), Step(text=["Second answer."]))
    first = await turn(client, account.headers, message="one", system_prompt="Be brief.")
    session_id = first[0].data["session_id"]
    await turn(client, account.headers, message="two", session_id=session_id)
    sent = upstream.requests[-1]["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "two"},
    ]


async def test_native_tool_round_trip(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(tool_calls=[("calculator", {"expression": "6*7"})]), Step(text=words("It is 42.")))
    events = await turn(client, account.headers, message="What is 6 times 7?")

    assert types(events) == ["run", "usage", "tool_call", "tool_result", "content.delta", "usage", "done"]
    call = next(e.data for e in events if e.type == "tool_call")
    result = next(e.data for e in events if e.type == "tool_result")
    assert call["name"] == "calculator" and json.loads(call["arguments"]) == {"expression": "6*7"}
    assert call["source"] == "builtin"
    assert result["call_id"] == call["call_id"] and result["ok"] is True and result["output"]["result"] == 42
    assert upstream.requests[0]["tools"][0]["type"] == "function"
    tool_message = upstream.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == call["call_id"]
    assert json.loads(tool_message["content"])["result"] == 42

    session = (
        await client.get(f"/api/v1/agent/chat/sessions/{events[0].data['session_id']}", headers=account.headers)
    ).json()
    kinds = [part["type"] for part in session["messages"][1]["content"]]
    assert kinds == ["tool_call", "tool_result", "text"]


async def test_a_model_writing_its_tool_call_as_text_gets_it_run_and_the_call_never_reaches_the_user(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    # As the local models write calls: in a code fence, with a schema keyword copied into the arguments.
    call = '```json\n{"name": "calculator", "arguments": {"expression": "6*7", "type": "object"}}\n```'
    upstream.push(Step(text=[call[:5], call[5:20], call[20:]]), Step(text=words("The answer is 42.")))
    events = await turn(client, account.headers, message="What is 6 times 7?", model="scripted-router")

    assert types(events) == ["run", "usage", "tool_call", "tool_result", "content.delta", "usage", "done"]
    assert next(e.data for e in events if e.type == "tool_call")["arguments"] == '{"expression": "6*7"}'
    result = next(e.data for e in events if e.type == "tool_result")
    assert result["output"]["result"] == 42 and result["summary"] == "6*7 = 42"
    assert text_of(events) == "The answer is 42."  # nothing of the call text
    # The tools are offered through the chat template; after they succeeded the model answers without them.
    first, answer_request = upstream.requests
    assert {t["function"]["name"] for t in first["tools"]} >= {"calculator", "current_datetime"}
    assert "e.g." not in json.dumps(first["tools"])  # no example a model could copy
    assert "tools" not in answer_request
    question, note = answer_request["messages"][-2:]
    assert question == {"role": "user", "content": "What is 6 times 7?"}
    assert note["role"] == "system" and "- 6*7 = 42" in note["content"]

    # The next turn reads the first one back as a transcript before the new question: no turn pattern to repeat.
    upstream.push(Step(text=words("Yes, it is.")))
    await turn(client, account.headers, message="Sure?", model="scripted-router",
               session_id=events[0].data["session_id"])  # fmt: skip
    follow_up = upstream.requests[-1]["messages"]
    assert [m["role"] for m in follow_up] == ["system", "user"]
    assert follow_up[1]["content"] == ("The conversation so far:\nUser: What is 6 times 7?\n(a tool said: 6*7 = 42)\n"
                                       "Assistant: The answer is 42.\n\nMy new message: Sure?")
    assert "[called" not in json.dumps(follow_up) and "[result" not in json.dumps(follow_up)


async def test_prose_streams_at_once_and_a_held_answer_that_is_no_call_is_asked_again_without_tools(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(text=words("Paris is the capital of France.")))
    events = await turn(client, account.headers, message="Capital of France?", model="scripted-router")
    assert "tool_call" not in types(events) and text_of(events) == "Paris is the capital of France."
    assert len(upstream.requests) == 1  # no routing round trip before a plain answer

    # A "call" of a tool that is not on offer (the model called the function it was asked to write).
    upstream.push(Step(text=['{"name": "reverse", "arguments": {"s": "abc"}}']),
                  Step(text=words("def reverse(s):\n    return s[::-1]")))  # fmt: skip
    events = await turn(client, account.headers, message="Write reverse(s)", model="scripted-router")
    assert "tool_call" not in types(events)
    assert text_of(events) == "def reverse(s):\n    return s[::-1]"
    assert "tools" in upstream.requests[-2] and "tools" not in upstream.requests[-1]


async def test_an_answer_that_imitates_a_call_after_the_tools_ran_gives_way_to_their_results(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    call = '{"name": "calculator", "arguments": {"expression": "1234 * 5678"}}'
    upstream.push(Step(text=[call]), Step(text=[call]))
    events = await turn(client, account.headers, message="What is 1234 * 5678?", model="scripted-router")
    assert [e.type for e in events].count("tool_call") == 1
    assert text_of(events) == "1234 * 5678 = 7006652"


async def test_a_local_model_answers_from_a_failed_call_instead_of_trying_again(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(text=['{"name": "calculator", "arguments": {"expression": "6*"}}']),
                  Step(text=words("I could not compute it.")))  # fmt: skip
    events = await turn(client, account.headers, message="What is 6 times?", model="scripted-router")

    assert [e.type for e in events].count("tool_call") == 1
    assert next(e.data for e in events if e.type == "tool_result")["ok"] is False
    assert text_of(events) == "I could not compute it."
    answer_request = upstream.requests[-1]
    assert "tools" not in answer_request
    # Told of the failure, a small model answers with it (or the call) again: it answers as if it had not tried.
    assert answer_request["messages"][-1] == {"role": "user", "content": "What is 6 times?"}
    assert "failed" not in json.dumps(answer_request["messages"])


async def test_a_failing_tool_is_reported_and_the_turn_goes_on(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(
        Step(tool_calls=[("calculator", {"expression": "__import__('os')"}), ("no_such_tool", {})]),
        Step(text=["Sorry, I could not compute that."]),
    )
    events = await turn(client, account.headers, message="break it")
    results = [e.data for e in events if e.type == "tool_result"]
    assert [r["ok"] for r in results] == [False, False]
    assert "not allowed" in results[0]["error"] and "unknown tool" in results[1]["error"]
    assert events[-1].type == "done" and text_of(events) == "Sorry, I could not compute that."


async def test_tool_rounds_are_bounded(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(*[Step(tool_calls=[("current_datetime", {})]) for _ in range(3)])
    events = await turn(client, account.headers, message="loop", max_tool_rounds=2)
    assert [e.type for e in events].count("tool_call") == 2
    assert events[-1].data["finish_reason"] == "tool_limit"
    no_tools = await turn(client, account.headers, message="plain", tools=[])
    assert "tools" not in upstream.requests[-1] and no_tools[-1].type == "done"


async def test_metrics_equal_the_sum_of_call_usage(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(tool_calls=[("calculator", {"expression": "1+1"})]), Step(text=words("Two, it is.")))
    first = await turn(client, account.headers, message="1+1?")
    session_id = first[0].data["session_id"]
    upstream.push(Step(text=words("And again.")))
    second = await turn(client, account.headers, message="again", session_id=session_id)
    calls = usage(first, "call") + usage(second, "call")
    assert len(calls) == 3
    metrics = await app.state.services.get(ChatService).usage(account.id, session_id)
    assert metrics.total_prompt_tokens == sum(c["prompt_tokens"] for c in calls)
    assert metrics.total_completion_tokens == sum(c["completion_tokens"] for c in calls)
    assert float(metrics.credits) == round(sum(c["credits"] for c in calls), 6) > 0
    total = usage(first, "total")[0]
    assert total["prompt_tokens"] == sum(c["prompt_tokens"] for c in usage(first, "call"))
    # 11 prompt tokens at 1.0 and 5 completion tokens at 2.0 per 1k for the scripted tool call
    assert usage(first, "call")[0]["credits"] == round((11 * 1.0 + 5 * 2.0) / 1000, 6)


async def test_regenerate_and_edit_branch_instead_of_overwriting(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(text=["A1"]), Step(text=["A2"]), Step(text=["A3"]))
    first = await turn(client, account.headers, message="question")
    session_id = first[0].data["session_id"]
    detail = (await client.get(f"/api/v1/agent/chat/sessions/{session_id}", headers=account.headers)).json()
    question = detail["messages"][0]

    regenerated = await turn(client, account.headers, message="question", session_id=session_id,
                             parent_message_id=question["id"])  # fmt: skip
    edited = await turn(client, account.headers, message="better question", session_id=session_id,
                        parent_message_id=question["id"])  # fmt: skip
    detail = (await client.get(f"/api/v1/agent/chat/sessions/{session_id}", headers=account.headers)).json()
    by_id = {m["id"]: m for m in detail["messages"]}
    answers = [m for m in detail["messages"] if m["role"] == "assistant"]
    assert [a["content"][0]["text"] for a in answers] == ["A1", "A2", "A3"]
    assert by_id[first[0].data["message_id"]]["parent_id"] == question["id"]
    assert by_id[regenerated[0].data["message_id"]]["parent_id"] == question["id"]  # a sibling answer
    edit_question = by_id[by_id[edited[0].data["message_id"]]["parent_id"]]
    assert edit_question["content"][0]["text"] == "better question" and edit_question["parent_id"] is None
    assert len(detail["messages"]) == 5  # nothing overwritten
    assert upstream.requests[-1]["messages"][1:] == [{"role": "user", "content": "better question"}]
    # The same history each time; a regenerated answer is sampled, a first answer and an edit are not.
    temperatures = [request.get("temperature") for request in upstream.requests]
    assert temperatures == [None, 0.8, None]
    assert upstream.requests[0]["messages"] == upstream.requests[1]["messages"]


async def test_sessions_and_runs_are_private(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    events = await turn(client, alice.headers, message="secret plans")
    session_id, run_id = events[0].data["session_id"], events[0].data["run_id"]
    for method, path, body in [
        ("GET", f"/api/v1/agent/chat/sessions/{session_id}", None),
        ("PATCH", f"/api/v1/agent/chat/sessions/{session_id}", {"title": "mine"}),
        ("DELETE", f"/api/v1/agent/chat/sessions/{session_id}", None),
        ("GET", f"/api/v1/agent/chat/runs/{run_id}", None),
        ("GET", f"/api/v1/agent/chat/runs/{run_id}/events", None),
        ("POST", f"/api/v1/agent/chat/runs/{run_id}/stop", None),
        ("POST", STREAM, {"message": "hi", "session_id": session_id}),
    ]:
        response = await client.request(method, path, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get("/api/v1/agent/chat/sessions", headers=bob.headers)).json()["items"] == []
    still = await client.get(f"/api/v1/agent/chat/sessions/{session_id}", headers=alice.headers)
    assert still.status_code == 200 and len(still.json()["messages"]) == 2


async def test_bad_input_is_refused_before_streaming(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    cases = [
        ({"message": ""}, 422),
        ({"message": "   "}, 422),
        ({"message": "x" * 40_000}, 422),
        ({"message": "hi", "model": "gpt-imaginary"}, 422),
        ({"message": "hi", "tools": ["telepathy"]}, 422),
        ({"message": "hi", "max_tool_rounds": 99}, 422),
        ({"message": "hi", "session_id": "chs_nope"}, 404),
        ({}, 422),
    ]
    for body, expected in cases:
        response = await client.post(STREAM, json=body, headers=account.headers)
        assert response.status_code == expected, (body, response.text)
        assert response.headers["content-type"] == "application/json"
    assert upstream.requests == []
    assert (await client.post(STREAM, json={"message": "hi"})).status_code == 401


async def test_a_second_turn_while_one_runs_gets_409(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(text=["first"]), Step(text=["slow ", "answer"], stall_s=1.0))
    session_id = (await turn(client, account.headers, message="start"))[0].data["session_id"]
    slow = asyncio.create_task(client.post(STREAM, json={"message": "slow", "session_id": session_id},
                                           headers=account.headers))  # fmt: skip
    for _ in range(100):
        detail = (await client.get(f"/api/v1/agent/chat/sessions/{session_id}", headers=account.headers)).json()
        if detail["active_run_id"]:
            break
        await asyncio.sleep(0.02)
    conflict = await client.post(STREAM, json={"message": "again", "session_id": session_id}, headers=account.headers)
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "run_active"
    assert (await slow).status_code == 200


async def test_upstream_failure_ends_with_an_error_event_and_keeps_the_message(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(status=503))
    events = await turn(client, account.headers, message="are you there?")
    assert types(events) == ["run", "usage", "error"]
    assert events[-1].data["code"] == "upstream_unavailable"
    detail = (
        await client.get(f"/api/v1/agent/chat/sessions/{events[0].data['session_id']}", headers=account.headers)
    ).json()
    assert detail["messages"][0]["content"][0]["text"] == "are you there?"
    assert detail["messages"][1]["status"] == "failed" and detail["active_run_id"] is None
    run = (await client.get(f"/api/v1/agent/chat/runs/{events[0].data['run_id']}", headers=account.headers)).json()
    assert run["status"] == "failed"

    upstream.push(Step(text=["Back again."]))
    again = await turn(client, account.headers, message="now?", session_id=events[0].data["session_id"])
    assert text_of(again) == "Back again."


async def test_a_stream_dropped_midway_is_an_upstream_error_keeping_what_arrived(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    upstream.push(Step(text=words("one two three four five six"), disconnect_after=3))
    events = await turn(client, account.headers, message="count")
    assert events[-1].type == "error" and events[-1].data["code"] == "upstream_unavailable", events[-1]
    assert "broke the stream" in events[-1].data["message"]
    assert text_of(events) == "one two three "
    detail = (
        await client.get(f"/api/v1/agent/chat/sessions/{events[0].data['session_id']}", headers=account.headers)
    ).json()
    assert detail["messages"][1]["status"] == "failed" and detail["active_run_id"] is None
    assert (await client.get("/api/v1/agent/credits/balance", headers=account.headers)).json()["held"] == "0.000000"


async def test_sessions_list_rename_search_and_delete_keeping_metrics(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    account = await make_account()
    first = (await turn(client, account.headers, message="Tell me about whales"))[0].data["session_id"]
    second = (await turn(client, account.headers, message="Tell me about owls"))[0].data["session_id"]
    listed = (await client.get("/api/v1/agent/chat/sessions", headers=account.headers)).json()["items"]
    assert [s["id"] for s in listed] == [second, first]
    assert listed[1]["title"] == "Tell me about whales"

    renamed = await client.patch(
        f"/api/v1/agent/chat/sessions/{first}", json={"title": "Whales"}, headers=account.headers
    )
    assert renamed.status_code == 200 and renamed.json()["title"] == "Whales"
    found = (await client.get("/api/v1/agent/chat/sessions", params={"q": "whal"}, headers=account.headers)).json()
    assert [s["id"] for s in found["items"]] == [first]
    assert (
        await client.patch(f"/api/v1/agent/chat/sessions/{first}", json={"model": "nope"}, headers=account.headers)
    ).status_code == 422

    before = await app.state.services.get(ChatService).usage(account.id, first)
    assert (await client.delete(f"/api/v1/agent/chat/sessions/{first}", headers=account.headers)).status_code == 204
    assert (await client.get(f"/api/v1/agent/chat/sessions/{first}", headers=account.headers)).status_code == 404
    assert await app.state.services.get(ChatService).usage(account.id, first) == before
