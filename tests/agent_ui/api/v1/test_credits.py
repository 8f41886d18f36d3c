"""Credits over the API: balances, grants, usage isolation, and chat turns paid from the balance."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from fastapi import FastAPI

from tests.sse import parse, types
from tests.upstream import ScriptedUpstream, Step, words

CREDITS = "/api/v1/agent/credits"
STREAM = "/api/v1/agent/chat/stream"


async def balance(client: httpx.AsyncClient, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    return (await client.get(f"{CREDITS}/balance", headers=headers)).json()


async def test_new_users_get_the_signup_grant_and_see_it_everywhere(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin, user = await make_account(), await make_account()
    assert await balance(client, user.headers) == {"balance": "10.000000", "held": "0.000000", "available": "10.000000"}
    assert Decimal((await client.get("/api/v1/auth/me", headers=user.headers)).json()["balance"]) == 10
    listed = (await client.get("/api/v1/admin/users", headers=admin.headers)).json()["items"]
    assert {Decimal(row["balance"]) for row in listed} == {Decimal(10)}
    history = (await client.get(f"{CREDITS}/history", headers=user.headers)).json()
    assert [(e["kind"], Decimal(e["amount"])) for e in history["items"]] == [("grant", 10)]


async def test_admins_grant_and_others_get_403_before_validation(client: httpx.AsyncClient, make_account) -> None:  # type: ignore[no-untyped-def]
    admin, user = await make_account(), await make_account()
    for body in [b'{"email": "x", "amount": 5}', b"{broken", b'{"amount": -1}']:
        denied = await client.post(f"{CREDITS}/grant", content=body,
                                   headers={**user.headers, "content-type": "application/json"})  # fmt: skip
        assert denied.status_code == 403, body
    grant = {"email": user.email.upper(), "amount": "2.5", "reason": "bonus"}
    by_email = await client.post(f"{CREDITS}/grant", json=grant, headers=admin.headers)
    assert by_email.status_code == 201 and Decimal(by_email.json()["balance_after"]) == Decimal("12.5")
    by_id = await client.post(f"{CREDITS}/grant", json={"user_id": user.id, "amount": 1}, headers=admin.headers)
    assert by_id.status_code == 201
    assert Decimal((await balance(client, user.headers))["balance"]) == Decimal("13.5")
    for body in [
        {"amount": 1},
        {"user_id": user.id, "email": user.email, "amount": 1},
        {"user_id": user.id, "amount": 0},
    ]:
        assert (await client.post(f"{CREDITS}/grant", json=body, headers=admin.headers)).status_code == 422, body
    missing = await client.post(
        f"{CREDITS}/grant", json={"email": "nobody@example.com", "amount": 1}, headers=admin.headers
    )
    assert missing.status_code == 404


async def test_a_turn_is_paid_from_the_balance_and_usage_is_private(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    alice, bob = await make_account(), await make_account()
    upstream.push(Step(text=words("A short answer.")))
    events = parse((await client.post(STREAM, json={"message": "hi"}, headers=alice.headers)).text)
    calls = [e.data for e in events if e.type == "usage" and e.data["scope"] == "call"]
    spent = sum(Decimal(str(c["credits"])) for c in calls)
    after = await balance(client, alice.headers)
    assert Decimal(after["balance"]) == 10 - spent and Decimal(after["held"]) == 0
    total = next(e.data for e in events if e.type == "usage" and e.data["scope"] == "total")
    assert Decimal(str(total["balance"])) == Decimal(after["balance"])
    history = (await client.get(f"{CREDITS}/history", headers=alice.headers)).json()["items"]
    assert history[0]["kind"] == "charge" and history[0]["cause_id"] == events[0].data["run_id"]

    session_id = events[0].data["session_id"]
    usage = (await client.get(f"{CREDITS}/usage/{session_id}", headers=alice.headers)).json()
    assert Decimal(usage["credits"]) == spent
    assert (await client.get(f"{CREDITS}/usage", headers=alice.headers)).json()["items"][0]["session_id"] == session_id
    assert (await client.get(f"{CREDITS}/usage/{session_id}", headers=bob.headers)).status_code == 404
    assert (await client.get(f"{CREDITS}/usage", headers=bob.headers)).json()["items"] == []


async def test_no_credit_means_402_before_any_stream(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    await make_account()  # the admin
    user = await make_account()
    broke = await app.state.services.credits.charge(user.id, 10_000_000)
    assert broke.balance_after == 0
    refused = await client.post(STREAM, json={"message": "hello?"}, headers=user.headers)
    assert refused.status_code == 402
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["error"]["code"] == "insufficient_credits"
    assert upstream.requests == []
    assert (await client.get("/api/v1/agent/chat/sessions", headers=user.headers)).json()["items"] == []


async def test_a_low_balance_ends_the_answer_with_length_where_it_runs_out(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    await make_account()
    user = await make_account()
    # Leave 0.2 credits: at 2 credits per 1k completion tokens that pays for well under the 256 the model sends.
    await app.state.services.credits.charge(user.id, 9_800_000)
    upstream.push(Step(text=[f"w{i} " for i in range(256)], rate=500))
    events = parse((await client.post(STREAM, json={"message": "hi", "tools": []}, headers=user.headers)).text)
    assert types(events) == ["run", "content.delta", "usage", "done"]
    assert events[-1].data["finish_reason"] == "length"
    assert upstream.requests[0]["max_tokens"] == 256  # the answer is cut by the balance, not shortened ahead
    shown = [e for e in events if e.type == "content.delta"]
    call = next(e.data for e in events if e.type == "usage" and e.data["scope"] == "call")
    assert 16 <= len(shown) == call["completion_tokens"] < 256
    after = await balance(client, user.headers)
    assert Decimal(after["held"]) == 0
    assert 0 <= Decimal(after["balance"]) == Decimal("0.2") - Decimal(str(call["credits"]))
    session = (await client.get(f"/api/v1/agent/chat/sessions/{events[0].data['session_id']}",
                                headers=user.headers)).json()  # fmt: skip
    answer = session["messages"][-1]
    assert answer["status"] == "complete" and answer["content"][0]["text"] == "".join(e.data["text"] for e in shown)


async def test_a_stopped_turn_is_charged_only_for_what_was_used(
    client: httpx.AsyncClient,
    make_account,
    upstream: ScriptedUpstream,  # type: ignore[no-untyped-def]
) -> None:
    user = await make_account()
    upstream.push(Step(text=[f"w{i} " for i in range(200)], rate=50))
    streaming = asyncio.create_task(client.post(STREAM, json={"message": "go on", "tools": []}, headers=user.headers))
    for _ in range(200):
        sessions = (await client.get("/api/v1/agent/chat/sessions", headers=user.headers)).json()["items"]
        if sessions and sessions[0]["active_run_id"]:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    run_id = sessions[0]["active_run_id"]
    assert Decimal((await balance(client, user.headers))["held"]) > 0  # the call's most is reserved
    assert (await client.post(f"/api/v1/agent/chat/runs/{run_id}/stop", headers=user.headers)).status_code == 202
    events = parse((await streaming).text)
    assert events[-1].data["finish_reason"] == "cancelled"
    call = next(e.data for e in events if e.type == "usage" and e.data["scope"] == "call")
    assert 0 < call["completion_tokens"] < 200
    after = await balance(client, user.headers)
    assert Decimal(after["held"]) == 0
    assert Decimal(after["balance"]) == 10 - Decimal(str(call["credits"]))
