"""Runs against a real database: batched persistence, replay, stop, crash recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.auth import AuthService
from services.auth.cache import PrincipalCache
from services.auth.schemas import RegisterRequest
from services.auth.tokens import TokenDigester
from services.db import Database
from services.errors import ConflictError, NotFoundError
from services.runs import RunService, RunStatus
from services.settings import AuthSettings, DatabaseSettings


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, DatabaseSettings())
    await database.start()
    yield database
    await database.stop()


async def new_user(db: Database, email: str = "a@example.com") -> str:
    auth = AuthService(db=db, digester=TokenDigester(b"k" * 32), principals=PrincipalCache(0), settings=AuthSettings())
    return (await auth.register(RegisterRequest(email=email, password="password-123"))).id


async def collect(batches: AsyncIterator[list]) -> list:  # type: ignore[type-arg]
    return [event async for batch in batches for event in batch]


async def test_events_are_persisted_in_batches_and_replayed_in_order(db: Database) -> None:
    user = await new_user(db)
    runs = RunService(db=db, flush_interval_s=0.01)
    await runs.start()
    run = runs.new_run(user_id=user, kind="chat")
    async with db.transaction() as session:
        session.add(run)
    handle = runs.open(run)
    for index in range(250):
        handle.emit("content.delta", {"text": f"{index} "})
        if index % 50 == 0:
            await asyncio.sleep(0.02)  # let the flusher write a batch
    handle.emit("done", {"finish_reason": "stop", "elapsed_ms": 1})
    await handle.finish(RunStatus.DONE)
    await runs.stop()

    events = await collect(await runs.follow(user, run.id))
    assert [e.id for e in events] == list(range(1, 252))
    assert "".join(e.data["text"] for e in events[:-1]) == "".join(f"{i} " for i in range(250))
    tail = await collect(await runs.follow(user, run.id, after=245))
    assert [e.id for e in tail] == list(range(246, 252))
    async with db.transaction(readonly=True) as session:
        from sqlmodel import func, select

        from services.runs.models import RunEventBatch

        batches = (await session.exec(select(func.count()).select_from(RunEventBatch))).one()
    assert 1 < batches < 250  # batched, not one row per event
    assert (await runs.get(user, run.id)).status == RunStatus.DONE


async def test_a_live_reader_gets_the_backlog_then_the_tail_and_stop_is_signalled(db: Database) -> None:
    user, other = await new_user(db), await new_user(db, "b@example.com")
    runs = RunService(db=db)
    await runs.start()
    run = runs.new_run(user_id=user, kind="chat")
    async with db.transaction() as session:
        session.add(run)
    handle = runs.open(run)
    handle.emit("run", {"run_id": run.id})
    reader = asyncio.ensure_future(collect(await runs.follow(user, run.id)))
    await asyncio.sleep(0.01)
    with pytest.raises(NotFoundError):
        await runs.request_stop(other, run.id)
    await runs.request_stop(user, run.id)
    assert handle.stop_requested
    handle.emit("done", {"finish_reason": "cancelled"})
    await handle.finish(RunStatus.CANCELLED)
    assert [e.type for e in await reader] == ["run", "done"]
    with pytest.raises(ConflictError):
        await runs.request_stop(user, run.id)
    await runs.stop()


async def test_runs_left_running_by_a_crash_are_interrupted_at_start(db: Database) -> None:
    user = await new_user(db)
    crashed = RunService(db=db, flush_interval_s=0.01)
    await crashed.start()
    run = crashed.new_run(user_id=user, kind="chat")
    async with db.transaction() as session:
        session.add(run)
    handle = crashed.open(run)
    handle.emit("run", {"run_id": run.id})
    handle.emit("content.delta", {"text": "half an ans"})
    await handle.flush()
    # The process dies here: no finish. A new process starts on the same database.
    restarted = RunService(db=db)
    await restarted.start()
    recovered = await restarted.get(user, run.id)
    assert recovered.status == RunStatus.INTERRUPTED
    events = await collect(await restarted.follow(user, run.id))
    assert [e.type for e in events] == ["run", "content.delta", "error"]
    assert events[-1].data["code"] == "interrupted" and events[-1].id == 3
    await restarted.stop()
