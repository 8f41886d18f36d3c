"""Metered model calls against the scripted upstream over real HTTP: structured answers validated and retried,
every attempt paid and reported, a stop settles what arrived and keeps nothing held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from services.auth.models import Role
from services.auth.scopes import Scope
from services.credits import CreditService, GrantRequest
from services.db import Database
from services.errors import UpstreamUnavailableError
from services.llm import ModelRegistry
from services.llm.metered import CallStoppedError, ModelCalls, Payer, price_micro
from services.llm.tokens import message_tokens
from services.money import to_credits, to_micro
from services.runs import RunHandle, RunKind, RunService, RunStatus
from services.settings import CreditsSettings, LLMSettings
from tests.conftest import scripted_llm
from tests.factories import principal, register
from tests.upstream import ScriptedUpstream, Step, words


class Outline(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1)
    slides: int = Field(ge=1, le=20)


@dataclass
class Setup:
    calls: ModelCalls
    credits: CreditService
    runs: RunService
    models: ModelRegistry
    user_id: str


@pytest.fixture
async def setup(db: Database, upstream: ScriptedUpstream) -> AsyncIterator[Setup]:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=0), owner="ins_here")
    models = ModelRegistry(LLMSettings.model_validate(scripted_llm(upstream)), local_runner=None)
    runs = RunService(db=db, owner="ins_here", flush_interval_s=0.01)
    runs.register_kind(RunKind("ppt", Scope.GENERATION))
    user = await register(db, on_register=credits.open_account)
    await credits.grant(principal("usr_admin", role=Role.ADMIN), GrantRequest(user_id=user.id, amount=Decimal(5)))
    yield Setup(ModelCalls(db=db, models=models, credits=credits), credits, runs, models, user.id)
    await models.close()


async def job_run(setup: Setup, db: Database) -> RunHandle:
    run = setup.runs.new_run(user_id=setup.user_id, kind="ppt")
    async with db.transaction() as session:
        session.add(run)
    return setup.runs.open(run)


async def test_a_structured_answer_is_constrained_validated_and_retried_and_each_try_is_paid(
    setup: Setup, db: Database, upstream: ScriptedUpstream
) -> None:
    handle = await job_run(setup, db)
    upstream.push(Step(text=['{"title": "Q3", "slides": 0}']), Step(text=['{"title": "Q3", "slides": 6}']))
    outline = await setup.calls.complete_json(Payer(setup.user_id, handle), setup.models.resolve("scripted"),
                                              [{"role": "user", "content": "outline Q3"}], Outline)  # fmt: skip
    assert outline == Outline(title="Q3", slides=6)
    first, second = upstream.requests
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"]["required"] == ["title", "slides"]
    assert "slides" in second["messages"][-1]["content"] and "not valid" in second["messages"][-1]["content"]
    handle.emit("done", {"finish_reason": "stop"})
    await handle.finish(RunStatus.DONE)
    events = [e async for batch in await setup.runs.follow(principal(setup.user_id), handle.run_id) for e in batch]
    usage = [e.data for e in events if e.type == "usage"]
    assert len(usage) == 2 and all(u["scope"] == "call" and u["credits"] > 0 for u in usage)
    balance = await setup.credits.balance(setup.user_id)
    assert balance.held == 0
    assert balance.balance == Decimal(5) - sum(Decimal(str(u["credits"])) for u in usage)


async def test_an_answer_that_never_validates_is_a_clear_error(
    setup: Setup, db: Database, upstream: ScriptedUpstream
) -> None:
    handle = await job_run(setup, db)
    upstream.push(*[Step(text=["no json here"]) for _ in range(3)])
    with pytest.raises(UpstreamUnavailableError) as failed:
        await setup.calls.complete_json(Payer(setup.user_id, handle), setup.models.resolve("scripted"),
                                        [{"role": "user", "content": "outline"}], Outline, retries=2)  # fmt: skip
    assert failed.value.code == "malformed_output" and len(upstream.requests) == 3
    assert (await setup.credits.balance(setup.user_id)).held == 0
    await handle.finish(RunStatus.FAILED, "malformed_output")


async def test_a_stop_settles_what_arrived_and_holds_nothing(
    setup: Setup, db: Database, upstream: ScriptedUpstream
) -> None:
    handle = await job_run(setup, db)
    upstream.push(Step(text=words("slow " * 200), rate=50))
    seen: list[str] = []
    asyncio.get_running_loop().call_later(0.3, handle.stop_signal.set)
    with pytest.raises(CallStoppedError) as stopped:
        await setup.calls.stream(Payer(setup.user_id, handle), setup.models.resolve("scripted"),
                                 [{"role": "user", "content": "go"}],
                                 on_delta=lambda delta: seen.append(delta.text))  # fmt: skip
    assert 3 <= stopped.value.usage.completion_tokens == len(seen) < 200
    assert stopped.value.usage.credits_micro > 0
    balance = await setup.credits.balance(setup.user_id)
    assert balance.held == 0 and balance.balance == Decimal(5) - Decimal(stopped.value.usage.credits_micro) / 10**6
    await handle.finish(RunStatus.CANCELLED)


def calls_with_step(setup: Setup, db: Database, step: int) -> ModelCalls:
    return ModelCalls(db=db, models=setup.models, credits=setup.credits, hold_step=step)


async def test_the_hold_starts_at_a_step_and_grows_while_the_answer_streams(
    setup: Setup, db: Database, upstream: ScriptedUpstream
) -> None:
    model = setup.models.resolve("scripted")  # 1 credit per 1k prompt tokens, 2 per 1k completion tokens
    messages = [{"role": "user", "content": "go"}]
    prompt = sum(message_tokens(m) for m in messages)
    calls, step = calls_with_step(setup, db, 16), 16
    handle = await job_run(setup, db)
    upstream.push(Step(text=[f"w{i} " for i in range(120)], rate=200, prompt_tokens=prompt))
    seen: list[str] = []
    samples: list[tuple[int, int]] = []  # (the most tokens that could have arrived, what was held then)

    async def watch() -> None:
        while True:
            held = to_micro((await setup.credits.balance(setup.user_id)).held)
            samples.append((len(seen), held))
            await asyncio.sleep(0.005)

    watcher = asyncio.ensure_future(watch())
    try:
        result, usage = await calls.stream(Payer(setup.user_id, handle), model, messages,
                                           on_delta=lambda delta: seen.append(delta.text))  # fmt: skip
    finally:
        watcher.cancel()
    # The balance (5 credits) pays for all of it: the answer is whole, though the first hold covered 16 tokens.
    assert result.finish_reason == "stop" and len(seen) == 120 == usage.completion_tokens
    assert usage.credits_micro == price_micro(model, prompt, 120)
    held = [amount for _count, amount in samples if amount]
    assert held[0] <= price_micro(model, prompt, step) < usage.credits_micro
    assert len(set(held)) >= 3  # grown in steps
    for count, amount in samples:  # never much past what was used: about a step, plus a step being added
        assert amount <= price_micro(model, prompt, count + 2 * step + 1), (count, amount)
    balance = await setup.credits.balance(setup.user_id)
    assert balance.held == 0 and balance.balance == Decimal(5) - to_credits(usage.credits_micro)
    await handle.finish(RunStatus.DONE)


async def test_an_answer_ends_with_length_where_the_balance_runs_out(
    setup: Setup, db: Database, upstream: ScriptedUpstream
) -> None:
    model = setup.models.resolve("scripted")
    messages = [{"role": "user", "content": "go"}]
    prompt = sum(message_tokens(m) for m in messages)
    # Leave what pays for the prompt and 40 tokens: enough to start, not for the 300 tokens the model sends.
    left = price_micro(model, prompt, 40)
    await setup.credits.charge(setup.user_id, 5 * 10**6 - left)
    calls = calls_with_step(setup, db, 16)
    handle = await job_run(setup, db)
    upstream.push(Step(text=[f"w{i} " for i in range(300)], rate=400))
    seen: list[str] = []
    result, usage = await calls.stream(Payer(setup.user_id, handle), model, messages,
                                       on_delta=lambda delta: seen.append(delta.text))  # fmt: skip
    assert result.finish_reason == "length"
    assert result.text == "".join(seen) and 30 <= len(seen) == usage.completion_tokens <= 40
    assert upstream.requests[-1]["max_tokens"] == model.max_output_tokens  # the provider was not told to stop
    assert 0 < usage.credits_micro <= left and usage.balance_micro == left - usage.credits_micro >= 0
    balance = await setup.credits.balance(setup.user_id)
    assert balance.held == 0 and to_micro(balance.balance) == left - usage.credits_micro
    await handle.finish(RunStatus.DONE)


async def test_a_hold_taken_ahead_is_taken_over_by_the_call(
    setup: Setup, db: Database, upstream: ScriptedUpstream
) -> None:
    model = setup.models.resolve("scripted")
    messages = [{"role": "user", "content": "go"}]
    calls = calls_with_step(setup, db, 16)
    handle = await job_run(setup, db)
    hold = await calls.hold_for_call(setup.user_id, model, messages, cause_id=handle.run_id)
    assert hold.amount_micro == price_micro(model, sum(message_tokens(m) for m in messages), 16)
    upstream.push(Step(text=words("a short answer")))
    result, usage = await calls.stream(Payer(setup.user_id, handle), model, messages, hold=hold)
    assert result.finish_reason == "stop" and usage.credits_micro > 0
    assert (await setup.credits.balance(setup.user_id)).held == 0  # settled: that hold is gone
    upstream.push(Step(status=500))
    failing = await calls.hold_for_call(setup.user_id, model, messages, cause_id=handle.run_id)
    with pytest.raises(UpstreamUnavailableError):
        await calls.stream(Payer(setup.user_id, handle), model, messages, hold=failing)
    assert (await setup.credits.balance(setup.user_id)).held == 0  # released
    await handle.finish(RunStatus.DONE)
