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
from services.llm.metered import CallStoppedError, ModelCalls, Payer
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
