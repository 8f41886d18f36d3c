"""A write transaction opened inside another one of the same task is a bug: it raises at once, naming the call,
instead of hanging on SQLite's writer lock (or committing apart on PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from services.db import Database
from services.db.database import NestedTransactionError


async def outer_writer(db: Database) -> None:
    async with db.transaction() as session:
        await session.exec(sa.text("SELECT 1"))  # type: ignore[call-overload]
        async with db.transaction():
            pass


async def test_a_nested_write_transaction_raises_at_once_naming_the_call(db: Database) -> None:
    with pytest.raises(NestedTransactionError) as raised:
        await asyncio.wait_for(outer_writer(db), timeout=5)  # on SQLite this used to wait forever
    assert "outer_writer" in str(raised.value) and "pass the outer session down" in str(raised.value)
    async with db.transaction() as session:  # the writer lock was given back
        assert (await session.exec(sa.text("SELECT 1"))).scalar() == 1  # type: ignore[call-overload]


async def test_reads_inside_a_write_and_writes_of_other_tasks_are_fine(db: Database) -> None:
    async def other_task() -> int:
        async with db.transaction() as session:
            return (await session.exec(sa.text("SELECT 2"))).scalar()  # type: ignore[call-overload]

    async with db.transaction() as session:
        await session.exec(sa.text("SELECT 1"))  # type: ignore[call-overload]
        async with db.transaction(readonly=True) as reading:
            assert (await reading.exec(sa.text("SELECT 3"))).scalar() == 3  # type: ignore[call-overload]
        waiting = asyncio.ensure_future(other_task())  # inherits the context, but is another task: it waits
        await asyncio.sleep(0.05)
    assert await asyncio.wait_for(waiting, timeout=5) == 2
