"""An answer whose instance died mid-stream keeps the text it streamed: on SQLite and PostgreSQL, with the
scripted upstream over real HTTP.

The dead instance is a second set of services on its own connection to the same database, owned by
``ins_crashed``; it "dies" when its database is stopped under it (nothing it does after that reaches the
database, as after ``kill -9``). A live instance then recovers its run as the app does after a heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlmodel import col, select

from services.chat import ChatService
from services.chat.agent import fold_events
from services.chat.schemas import ChatStreamRequest
from services.credits import CreditService
from services.db import Database
from services.instances import LiveInstances
from services.llm import ModelRegistry
from services.llm.metered import ModelCalls
from services.runs import RunEvent, RunService
from services.runs.models import RunEventBatch
from services.settings import ChatSettings, CreditsSettings, DatabaseSettings, LLMSettings
from services.tools import BuiltinTools, ToolCatalog
from tests.conftest import scripted_llm
from tests.factories import principal, register
from tests.upstream import ScriptedUpstream, Step, words

ANSWER = [f"w{i} " for i in range(400)]


@dataclass
class Instance:
    """One app instance's chat, built as the composition root builds it."""

    db: Database
    credits: CreditService
    runs: RunService
    models: ModelRegistry
    chat: ChatService

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead instance cannot write what it still holds
            await self.runs.stop()
        await self.models.close()


def instance(db: Database, owner: str, upstream: ScriptedUpstream) -> Instance:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=5), owner=owner)
    models = ModelRegistry(LLMSettings.model_validate(scripted_llm(upstream)), local_runner=None)
    runs = RunService(db=db, owner=owner, flush_interval_s=0.01)
    tools = ToolCatalog()
    tools.add(BuiltinTools())
    chat = ChatService(db=db, runs=runs, models=models, calls=ModelCalls(db=db, models=models, credits=credits),
                       tools=tools, settings=ChatSettings())  # fmt: skip
    runs.register_kind(chat.run_kind())
    return Instance(db, credits, runs, models, chat)


@pytest.fixture
async def alive(db: Database, upstream: ScriptedUpstream) -> AsyncIterator[Instance]:
    live = instance(db, "ins_alive", upstream)
    await live.runs.start()
    yield live
    await live.close()


async def persisted(db: Database, run_id: str) -> list[RunEvent]:
    async with db.transaction(readonly=True) as session:
        batches = (
            await session.exec(
                select(RunEventBatch).where(RunEventBatch.run_id == run_id).order_by(col(RunEventBatch.first_id))
            )
        ).all()
    return [RunEvent(id_, type_, data) for batch in batches for id_, type_, data in batch.events]


def streamed_text(events: list[RunEvent]) -> str:
    return "".join(event.data["text"] for event in events if event.type == "content.delta")


async def test_an_answer_whose_instance_died_keeps_the_text_it_streamed(
    db: Database, database_url: str, db_settings: DatabaseSettings, upstream: ScriptedUpstream, alive: Instance
) -> None:
    crashed_db = Database(database_url, db_settings)
    await crashed_db.start()
    crashed = instance(crashed_db, "ins_crashed", upstream)
    await crashed.runs.start()
    try:
        user = await register(db, on_register=alive.credits.open_account)
        upstream.push(Step(text=ANSWER, rate=100))
        started = await crashed.chat.start_turn(principal(user.id), ChatStreamRequest(message="go", tools=[]))
        for _ in range(500):  # until a good part of the answer is in the database
            if len([e for e in await persisted(db, started.run_id) if e.type == "content.delta"]) >= 20:
                break
            await asyncio.sleep(0.01)
        await crashed_db.stop()  # the instance dies: nothing it does from here reaches the database
        crashed.runs.stop_here(started.run_id)  # (and its stream stops, so the test does not wait for it)
        before = await alive.chat.get_session(user.id, started.session_id)
        assert before.messages[-1].content == [] and before.messages[-1].status == "streaming"

        live = LiveInstances(frozenset({"ins_alive"}))
        assert [run.id for run in await alive.runs.recover(live)] == [started.run_id]
        assert await alive.credits.release_orphaned(live) == 1  # the call's hold

        events = await persisted(db, started.run_id)
        text = streamed_text(events)
        assert len(text) >= len("".join(ANSWER[:20])) and "".join(ANSWER).startswith(text)
        detail = await alive.chat.get_session(user.id, started.session_id)
        answer = detail.messages[-1]
        assert answer.id == started.message_id and answer.status == "interrupted"
        assert answer.content == [{"type": "text", "text": text}]
        assert detail.active_run_id is None  # free for the next turn
        found = await alive.chat.list_sessions(user.id, limit=10, cursor=None, query=ANSWER[1])
        assert [session.id for session in found.items] == [started.session_id]  # what it streamed is searchable
        assert events[-1].type == "error" and events[-1].data["code"] == "interrupted"
        balance = await alive.credits.balance(user.id)
        assert balance.held == 0 and balance.balance == 5  # nothing was settled: the call never ended
    finally:
        await crashed.close()


async def test_the_events_of_a_turn_fold_into_the_message_the_turn_stored(
    db: Database, upstream: ScriptedUpstream, alive: Instance
) -> None:
    """What recovery rebuilds from events is what a turn that ends stores: text, tool calls, results, tokens."""
    user = await register(db, on_register=alive.credits.open_account)
    upstream.push(Step(text=words("Let me count."), tool_calls=[("calculator", {"expression": "6*7"})]),
                  Step(text=words("It is 42.")))  # fmt: skip
    started = await alive.chat.start_turn(principal(user.id), ChatStreamRequest(message="6*7?", tools=["builtin"]))
    await alive.runs.wait(started.run_id, timeout_s=10)
    answer = (await alive.chat.get_session(user.id, started.session_id)).messages[-1]
    assert answer.status == "complete"
    assert [part["type"] for part in answer.content] == ["text", "tool_call", "tool_result", "text"]
    folded = fold_events(await persisted(db, started.run_id))
    assert folded.parts == answer.content
    assert folded.prompt_tokens == answer.prompt_tokens > 0
    assert folded.completion_tokens == answer.completion_tokens > 0
