"""Runs against a real database: batched persistence, replay, a bounded live window, stop, progress throttling,
supervision, scopes by kind, and recovery of the runs of instances that are gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlmodel import func, select

from services.auth.scopes import Scope
from services.db import Database
from services.errors import ConflictError, NotFoundError, PermissionDeniedError
from services.instances import LiveInstances
from services.runs import RunHandle, RunKind, RunService, RunStatus
from services.runs.models import RunEventBatch
from services.settings import RunSettings
from tests.factories import principal, register


def service(db: Database, owner: str = "ins_here", **settings: float) -> RunService:
    runs = RunService(db=db, owner=owner, settings=RunSettings(**settings), flush_interval_s=0.01)  # type: ignore[arg-type]
    runs.register_kind(RunKind("chat", Scope.CHAT))
    runs.register_kind(RunKind("podcast", Scope.GENERATION))
    return runs


async def started(runs: RunService, db: Database, user: str, kind: str = "chat") -> RunHandle:
    run = runs.new_run(user_id=user, kind=kind)
    async with db.transaction() as session:
        session.add(run)
    return runs.open(run)


async def collect(batches: AsyncIterator[list]) -> list:  # type: ignore[type-arg]
    return [event async for batch in batches for event in batch]


async def test_events_are_persisted_in_batches_and_replayed_in_order(db: Database) -> None:
    user = principal((await register(db)).id)
    runs = service(db)
    await runs.start()
    handle = await started(runs, db, user.user.id)
    for index in range(250):
        handle.emit("content.delta", {"text": f"{index} "})
        if index % 50 == 0:
            await asyncio.sleep(0.02)  # let the flusher write a batch
    handle.emit("done", {"finish_reason": "stop", "elapsed_ms": 1})
    await handle.finish(RunStatus.DONE)
    await runs.stop()

    events = await collect(await runs.follow(user, handle.run_id))
    assert [e.id for e in events] == list(range(1, 252))
    assert "".join(e.data["text"] for e in events[:-1]) == "".join(f"{i} " for i in range(250))
    tail = await collect(await runs.follow(user, handle.run_id, after=245))
    assert [e.id for e in tail] == list(range(246, 252))
    async with db.transaction(readonly=True) as session:
        batches = (await session.exec(select(func.count()).select_from(RunEventBatch))).one()
    assert 1 < batches < 250  # batched, not one row per event
    assert (await runs.get(user, handle.run_id)).status == RunStatus.DONE


async def test_a_live_run_keeps_a_bounded_window_and_older_events_replay_from_the_database(db: Database) -> None:
    user = principal((await register(db)).id)
    runs = service(db, live_event_window=16)
    await runs.start()
    handle = await started(runs, db, user.user.id)
    for index in range(200):
        handle.emit("content.delta", {"text": str(index)})
    await handle.flush()
    live = runs.bus.get(handle.run_id)
    assert live is not None and len(live.events) <= 16 and live.base >= 184  # the rest left memory
    reader = asyncio.ensure_future(collect(await runs.follow(user, handle.run_id, after=3)))
    await asyncio.sleep(0.05)
    handle.emit("done", {"finish_reason": "stop"})
    await handle.finish(RunStatus.DONE)
    events = await reader
    assert [e.id for e in events] == list(range(4, 202))
    assert [e.data.get("text") for e in events[:3]] == ["3", "4", "5"]
    await runs.stop()


async def test_a_live_reader_gets_the_backlog_then_the_tail_and_stop_is_signalled(db: Database) -> None:
    user = principal((await register(db)).id)
    other = principal((await register(db, "b@example.com")).id)
    runs = service(db)
    await runs.start()
    handle = await started(runs, db, user.user.id)
    handle.emit("run", {"run_id": handle.run_id})
    reader = asyncio.ensure_future(collect(await runs.follow(user, handle.run_id)))
    await asyncio.sleep(0.01)
    with pytest.raises(NotFoundError):
        await runs.request_stop(other, handle.run_id)
    await runs.request_stop(user, handle.run_id)
    assert handle.stop_requested and handle.stop_signal.is_set()
    handle.emit("done", {"finish_reason": "cancelled"})
    await handle.finish(RunStatus.CANCELLED)
    assert [e.type for e in await reader] == ["run", "done"]
    with pytest.raises(ConflictError):
        await runs.request_stop(user, handle.run_id)
    await runs.stop()


async def test_runs_are_read_and_stopped_with_the_scope_of_their_kind(db: Database) -> None:
    user_id = (await register(db)).id
    runs = service(db)
    await runs.start()
    podcast = await started(runs, db, user_id, kind="podcast")
    chat_key = principal(user_id, scopes=["chat"])
    for call in (runs.get(chat_key, podcast.run_id), runs.request_stop(chat_key, podcast.run_id)):
        with pytest.raises(PermissionDeniedError):
            await call
    assert not podcast.stop_requested
    generation_key = principal(user_id, scopes=["generation"])
    assert (await runs.get(generation_key, podcast.run_id)).kind == "podcast"
    with pytest.raises(NotFoundError):  # a kind outside what the endpoint serves reads as missing
        await runs.get(generation_key, podcast.run_id, kinds={"chat"})
    await runs.request_stop(generation_key, podcast.run_id)
    assert podcast.stop_requested
    await podcast.finish(RunStatus.CANCELLED)
    await runs.stop()


async def test_progress_is_throttled_in_order_and_the_last_report_is_always_sent(db: Database) -> None:
    user = principal((await register(db)).id)
    runs = service(db, progress_per_second=10)
    await runs.start()
    handle = await started(runs, db, user.user.id, kind="podcast")
    began = time.monotonic()
    for done in range(1, 501):
        handle.progress("lines", done, 500)
        if done % 50 == 0:
            await asyncio.sleep(0.05)
    elapsed = time.monotonic() - began
    await handle.finish(RunStatus.DONE)
    progress = [e.data for e in await collect(await runs.follow(user, handle.run_id)) if e.type == "progress"]
    # 500 reports over ~0.5 s (longer on a busy machine): the first at once, one every 100 ms, the last at the end
    assert 3 <= len(progress) <= 2 + 10 * elapsed, (len(progress), elapsed)
    done = [p["done"] for p in progress]
    assert done == sorted(done) and done[-1] == 500 and progress[-1]["total"] == 500
    run = await runs.get(user, handle.run_id)
    assert run.progress == {"stage": "lines", "done": 500, "total": 500, "message": None}
    await runs.stop()


async def test_supervised_work_that_fails_or_forgets_to_finish_closes_its_run(db: Database) -> None:
    user = principal((await register(db)).id)
    runs = service(db)
    await runs.start()

    async def broken(handle: RunHandle) -> None:
        raise RuntimeError("boom")

    handle = await started(runs, db, user.user.id)
    runs.launch(handle, broken)
    await runs.wait(handle.run_id, timeout_s=5)
    run = await runs.get(user, handle.run_id)
    assert run.status == RunStatus.FAILED and run.error_code == "internal"
    assert [e.type for e in await collect(await runs.follow(user, handle.run_id))] == ["error"]
    await runs.stop()


async def test_shutdown_stops_supervised_runs_and_waits_for_them_to_save(db: Database) -> None:
    user = principal((await register(db)).id)
    runs = service(db, stop_grace_s=5)
    await runs.start()

    async def answer(handle: RunHandle) -> None:
        handle.emit("content.delta", {"text": "partial"})
        await handle.wait_stop()
        handle.emit("done", {"finish_reason": "cancelled"})
        await handle.finish(RunStatus.CANCELLED)

    handle = await started(runs, db, user.user.id)
    runs.launch(handle, answer)
    await asyncio.sleep(0.01)
    await runs.stop()
    assert (await runs.get(user, handle.run_id)).status == RunStatus.CANCELLED


async def test_only_the_runs_of_instances_that_are_gone_are_recovered(db: Database) -> None:
    user = principal((await register(db)).id)
    crashed, alive = service(db, owner="ins_crashed"), service(db, owner="ins_alive")
    await crashed.start()
    lost = await started(crashed, db, user.user.id)
    lost.emit("run", {"run_id": lost.run_id})
    lost.emit("content.delta", {"text": "half an ans"})
    await lost.flush()
    running = await started(alive, db, user.user.id)
    running.emit("run", {"run_id": running.run_id})
    # ins_crashed dies here (no finish, no clean stop); ins_alive holds its lease.
    interrupted: list[str] = []

    async def tidy(runs: list) -> None:  # type: ignore[type-arg]
        interrupted.extend(run.id for run in runs)

    recovering = RunService(db=db, owner="ins_alive")
    recovering.register_kind(RunKind("chat", Scope.CHAT, on_interrupted=tidy))
    recovered = await recovering.recover(LiveInstances(frozenset({"ins_alive"})))
    assert [run.id for run in recovered] == [lost.run_id] and interrupted == [lost.run_id]
    assert (await recovering.get(user, lost.run_id)).status == RunStatus.INTERRUPTED
    assert (await recovering.get(user, running.run_id)).status == RunStatus.RUNNING
    events = await collect(await recovering.follow(user, lost.run_id))
    assert [e.type for e in events] == ["run", "content.delta", "error"]
    assert events[-1].data["code"] == "interrupted" and events[-1].id == 3
    assert await recovering.recover(LiveInstances(frozenset({"ins_alive"}))) == []
    await running.finish(RunStatus.DONE)
    await alive.stop()


async def test_a_progress_report_waiting_for_its_turn_goes_out_before_the_end(db: Database) -> None:
    user = principal((await register(db)).id)
    runs = service(db, progress_per_second=1)
    await runs.start()
    handle = await started(runs, db, user.user.id, kind="podcast")
    handle.progress("lines", 1, 3)
    handle.progress("lines", 3, 3)  # waits a second for its turn
    handle.emit("done", {"finish_reason": "stop"})
    await handle.finish(RunStatus.DONE)
    events = await collect(await runs.follow(user, handle.run_id))
    assert [(e.type, e.data.get("done")) for e in events] == [("progress", 1), ("progress", 3), ("done", None)]
    await runs.stop()
