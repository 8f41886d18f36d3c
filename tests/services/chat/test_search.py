"""Searching chats: titles and the text of every message, through the full-text index kept in step with turns,
renames and deletes; on SQLite and PostgreSQL, with the scripted upstream answering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from services.chat import ChatService
from services.chat.schemas import ChatStreamRequest, SessionUpdate
from services.credits import CreditService
from services.db import Database
from services.llm import ModelRegistry
from services.llm.metered import ModelCalls
from services.runs import RunService
from services.settings import ChatSettings, CreditsSettings, LLMSettings
from services.tools import ToolCatalog
from tests.conftest import scripted_llm
from tests.factories import principal, register
from tests.services.db.test_fulltext import MALFORMED
from tests.upstream import ScriptedUpstream, Step, words


@dataclass
class Chat:
    chat: ChatService
    runs: RunService
    credits: CreditService

    async def ask(self, user_id: str, message: str, answer: str, session_id: str | None = None) -> str:
        """One finished turn; returns its session id."""
        self.upstream.push(Step(text=words(answer)))
        started = await self.chat.start_turn(
            principal(user_id), ChatStreamRequest(message=message, session_id=session_id, tools=[])
        )
        await self.runs.wait(started.run_id, timeout_s=10)
        return started.session_id

    async def found(self, user_id: str, query: str) -> list[str]:
        page = await self.chat.list_sessions(user_id, limit=50, cursor=None, query=query)
        return [session.id for session in page.items]

    upstream: ScriptedUpstream


@pytest.fixture
async def chat(db: Database, upstream: ScriptedUpstream) -> AsyncIterator[Chat]:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=100), owner="ins_test")
    models = ModelRegistry(LLMSettings.model_validate(scripted_llm(upstream)), local_runner=None)
    runs = RunService(db=db, owner="ins_test")
    service = ChatService(db=db, runs=runs, models=models, calls=ModelCalls(db=db, models=models, credits=credits),
                          tools=ToolCatalog(), settings=ChatSettings())  # fmt: skip
    runs.register_kind(service.run_kind())
    await runs.start()
    yield Chat(chat=service, runs=runs, credits=credits, upstream=upstream)
    await runs.stop()
    await models.close()


async def test_finds_sessions_by_title_question_and_answer_words_as_prefixes(db: Database, chat: Chat) -> None:
    user = await register(db, on_register=chat.credits.open_account)
    whales = await chat.ask(user.id, "Tell me about whales", "Blue whales are the largest animals.")
    await chat.ask(user.id, "Tell me about owls", "Owls hunt at night.", session_id=None)
    python = await chat.ask(user.id, "How do I read a file?", "Use pathlib: Path('x').read_text().")
    await chat.ask(user.id, "And write one?", "Path('x').write_text('hello') works too.", session_id=python)

    assert await chat.found(user.id, "whal") == [whales]  # the title and the question, as a prefix
    assert await chat.found(user.id, "LARGEST anim") == [whales]  # the answer; every word must match
    assert await chat.found(user.id, "pathlib hello") == []  # both words, but in no single message
    assert await chat.found(user.id, "write_text") == [python]  # a later turn's answer
    assert await chat.found(user.id, "giraffe") == []


async def test_results_stay_newest_first_and_paginate(db: Database, chat: Chat) -> None:
    user = await register(db, on_register=chat.credits.open_account)
    sessions = [await chat.ask(user.id, f"Question {n} about rivers", f"Answer {n}.") for n in range(3)]
    await chat.ask(user.id, "Unrelated", "Nothing here.")
    first = await chat.chat.list_sessions(user.id, limit=2, cursor=None, query="river")
    assert [s.id for s in first.items] == [sessions[2], sessions[1]] and first.next_cursor
    rest = await chat.chat.list_sessions(user.id, limit=2, cursor=first.next_cursor, query="river")
    assert [s.id for s in rest.items] == [sessions[0]] and rest.next_cursor is None


async def test_renamed_and_deleted_sessions_follow_in_search(db: Database, chat: Chat) -> None:
    user = await register(db, on_register=chat.credits.open_account)
    session = await chat.ask(user.id, "Plan a trip", "Where to?")
    await chat.chat.update_session(user.id, session, SessionUpdate(title="Iceland itinerary"))
    assert await chat.found(user.id, "icel") == [session]
    assert await chat.found(user.id, "trip") == [session]  # still in the question
    await chat.chat.update_session(user.id, session, SessionUpdate(title="Norway"))
    assert await chat.found(user.id, "iceland") == []
    await chat.chat.delete_session(user.id, session)
    assert await chat.found(user.id, "norway") == []
    assert await chat.found(user.id, "trip") == []


async def test_another_users_text_never_matches(db: Database, chat: Chat) -> None:
    alice = await register(db, "alice@example.com", on_register=chat.credits.open_account)
    bob = await register(db, "bob@example.com", on_register=chat.credits.open_account)
    secret = await chat.ask(alice.id, "My secret password hint", "Noted: marmalade.")
    assert await chat.found(alice.id, "marmalade") == [secret]
    assert await chat.found(bob.id, "marmalade") == []
    assert await chat.found(bob.id, "secret") == []


async def test_malformed_queries_give_results_or_nothing(db: Database, chat: Chat) -> None:
    user = await register(db, on_register=chat.credits.open_account)
    session = await chat.ask(user.id, "foo bar", "baz and more")
    for query in MALFORMED:
        assert await chat.found(user.id, query) in ([], [session]), query
    assert await chat.found(user.id, '"foo') == [session]
    assert await chat.found(user.id, "*") == []
    assert await chat.found(user.id, "   ") == [session]  # no query at all: every session
