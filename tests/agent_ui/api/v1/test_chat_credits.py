"""Chat turns racing for one balance, over the API on SQLite and PostgreSQL, with the scripted upstream.

A model call holds what it is expected to cost (its prompt and a step of answer), not what its longest answer
could cost, so a balance serves as many turns at once as it can pay for; a turn it cannot start is a 402 that
stores nothing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from fastapi import FastAPI
from sqlmodel import col, func, select

from services.chat.models import ChatMessage, ChatSession
from services.llm.metered import hold_step_tokens, price_micro
from services.llm.tokens import message_tokens
from services.money import to_micro
from services.runs import Run
from tests.sse import parse
from tests.upstream import ScriptedUpstream, Step

STREAM = "/api/v1/agent/chat/stream"
TURNS = 30
PAID_FOR = 7


async def count(app: FastAPI, table: type, user_id: str) -> int:
    async with app.state.services.core.db.transaction(readonly=True) as session:
        statement = select(func.count()).select_from(table).where(col(table.user_id) == user_id)  # type: ignore[attr-defined]
        return int((await session.exec(statement)).one())


async def test_a_balance_serves_as_many_concurrent_turns_as_it_pays_for_and_refusals_store_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,  # type: ignore[no-untyped-def]
    upstream: ScriptedUpstream,
) -> None:
    await make_account()  # the admin
    user = await make_account()
    services = app.state.services
    model = services.core.models.resolve("scripted")
    # Each turn asks "hi" in a new session and gets an answer exactly as long as the first hold covers, with
    # the prompt the meter estimates: it costs exactly what its call first holds.
    history = [{"role": "system", "content": services.core.settings.chat.system_prompt},
               {"role": "user", "content": "hi"}]  # fmt: skip
    prompt = sum(message_tokens(m) for m in history)
    step = hold_step_tokens(model)
    assert step < model.max_output_tokens  # a first hold is less than what the longest answer could cost
    turn_cost = price_micro(model, prompt, step)
    balance = PAID_FOR * turn_cost + turn_cost // 2  # pays for 7 turns, and half of an 8th
    await services.credits.charge(user.id, 10_000_000 - balance)
    # Slow enough that every request is in before the first answer ends.
    upstream.push(*[Step(text=[f"w{i} " for i in range(step)], rate=step / 1.5, prompt_tokens=prompt)
                    for _ in range(TURNS)])  # fmt: skip

    responses = await asyncio.gather(
        *(client.post(STREAM, json={"message": "hi", "tools": []}, headers=user.headers) for _ in range(TURNS))
    )

    accepted = [parse(r.text) for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert 1 < len(accepted) <= PAID_FOR, len(accepted)
    assert len(accepted) >= PAID_FOR - 1  # about as many as it pays for, not one that takes it all
    assert all(r.status_code == 402 and r.json()["error"]["code"] == "insufficient_credits" for r in refused)
    for events in accepted:  # every accepted turn was answered in full
        assert events[-1].type == "done" and events[-1].data["finish_reason"] == "stop", events[-1]
    # A refused turn left nothing behind: no session, no message, no run.
    assert await count(app, ChatSession, user.id) == len(accepted)
    assert await count(app, ChatMessage, user.id) == 2 * len(accepted)
    assert await count(app, Run, user.id) == len(accepted)
    listed = (await client.get("/api/v1/agent/chat/sessions", headers=user.headers)).json()["items"]
    assert {s["id"] for s in listed} == {events[0].data["session_id"] for events in accepted}
    # The ledger: what was settled never passed the balance, nothing stays held.
    settled = sum(
        to_micro(Decimal(str(e.data["credits"])))
        for events in accepted
        for e in events
        if e.type == "usage" and e.data["scope"] == "call"
    )
    after = (await client.get("/api/v1/agent/credits/balance", headers=user.headers)).json()
    assert 0 < settled <= balance and to_micro(Decimal(after["balance"])) == balance - settled >= 0
    assert Decimal(after["held"]) == 0
    assert await services.credits.ledger_sum(user.id) == balance - settled


async def test_the_schema_documents_what_a_turn_can_be_refused_with(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,  # type: ignore[no-untyped-def]
    upstream: ScriptedUpstream,
) -> None:
    responses = (await client.get("/openapi.json")).json()["paths"][STREAM]["post"]["responses"]
    assert {"200", "402", "404", "409", "422", "503"} <= set(responses)
    assert "text/event-stream" in responses["200"]["content"]
    for status in ("402", "404", "409"):
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    # and each is what the route answers
    await make_account()
    user = await make_account()
    await app.state.services.credits.charge(user.id, 10_000_000)
    broke = await client.post(STREAM, json={"message": "hi"}, headers=user.headers)
    assert broke.status_code == 402 and broke.json()["error"]["code"] == "insufficient_credits"
    other = await make_account()
    missing = await client.post(STREAM, json={"message": "hi", "session_id": "chs_nope"}, headers=other.headers)
    assert missing.status_code == 404
    upstream.push(Step(text=["slow ", "answer"], stall_s=1.0))
    slow = asyncio.ensure_future(client.post(STREAM, json={"message": "go"}, headers=other.headers))
    for _ in range(200):
        sessions = (await client.get("/api/v1/agent/chat/sessions", headers=other.headers)).json()["items"]
        if sessions and sessions[0]["active_run_id"]:
            break
        await asyncio.sleep(0.01)
    busy = await client.post(STREAM, json={"message": "again", "session_id": sessions[0]["id"]}, headers=other.headers)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "run_active"
    assert (await slow).status_code == 200
