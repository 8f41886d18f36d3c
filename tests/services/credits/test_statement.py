"""The statement people read: one line per cause (a chat turn's several model calls summed), labelled by what it
paid for through the describers the capabilities register; on SQLite and PostgreSQL, wired as the app wires it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.auth.models import Role
from services.chat.capability import ChatCapability
from services.chat.models import ChatSession
from services.container import Services, build_services
from services.credits import CreditService, GrantRequest
from services.ids import new_id
from services.runs.models import Run
from services.sandbox.capability import SandboxCapability
from services.sandbox.models import Sandbox
from services.settings import Settings
from tests.conftest import cheap_passwords
from tests.factories import principal, register

CREDIT = 1_000_000
ADMIN = principal("usr_admin", role=Role.ADMIN)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The core and the capabilities as the composition root builds them; only the database is opened."""
    built = build_services(settings, b"k" * 32, [ChatCapability, SandboxCapability], passwords=cheap_passwords())
    await built.core.db.start()
    yield built
    await built.core.models.close()
    await built.core.db.stop()


async def add(services: Services, *rows: object) -> None:
    async with services.core.db.transaction() as session:
        for row in rows:  # parents first: the tables have no ORM relationships to order the inserts by
            session.add(row)
            await session.flush()


def chat(user_id: str, title: str) -> ChatSession:
    now = datetime.now(UTC)
    return ChatSession(id=new_id("chs"), user_id=user_id, title=title, model="m", created_at=now, updated_at=now)


def run(user_id: str, kind: str, subject_id: str | None) -> Run:
    return Run(id=new_id("run"), user_id=user_id, kind=kind, subject_id=subject_id, status="done",
               created_at=datetime.now(UTC))  # fmt: skip


async def pay(credits: CreditService, user_id: str, micro: int, cause_type: str, cause_id: str) -> None:
    """As a metered model call, a job fee or a sandbox's minutes are paid: a hold, then settled."""
    hold = await credits.hold(user_id, at_most=micro, cause_type=cause_type, cause_id=cause_id)
    await credits.settle(hold, micro)


async def test_a_turns_calls_are_one_line_and_every_line_says_what_it_paid_for(services: Services) -> None:
    credits = services.core.credits
    user = (await register(services.core.db, "reader@example.com", on_register=credits.open_account)).id
    await credits.grant(ADMIN, GrantRequest(user_id=user, amount=Decimal(5), reason="welcome"))
    rome, gone = chat(user, "Trip to Rome"), chat(user, "Deleted later")
    first, second, orphan = run(user, "chat", rome.id), run(user, "chat", rome.id), run(user, "chat", gone.id)
    job = run(user, "summarize_pdf", None)
    now = datetime.now(UTC)
    lived = timedelta(minutes=11, seconds=5)  # charged as 12 minutes
    box = Sandbox(id=new_id("sbx"), user_id=user, backend="docker", status="destroyed", template="python", cpu=1,
                  memory_mb=512, pids=64, disk_mb=512, timeout_s=3600, created_at=now - lived,
                  expires_at=now + timedelta(hours=1), destroyed_at=now)  # fmt: skip
    await add(services, rome, gone, first, second, orphan, job, box)
    # Two turns of one chat whose calls interleave, a turn whose chat was deleted, a job, a sandbox.
    for micro, cause in [(100, first), (200, second), (300, first), (400, first), (500, second)]:
        await pay(credits, user, micro, "run", cause.id)
    await pay(credits, user, 60, "run", orphan.id)
    await pay(credits, user, 1000, "job", job.id)
    await pay(credits, user, 7, "run", job.id)
    await pay(credits, user, 8, "run", job.id)
    await pay(credits, user, 1200, "sandbox", box.id)
    async with services.core.db.transaction() as session:
        await session.delete(await session.get(ChatSession, gone.id))

    lines = (await credits.statement(user, limit=50, cursor=None)).items
    assert [(line.label, line.detail, line.amount, line.entries) for line in lines] == [
        ("Sandbox python: 12 min", None, Decimal("-0.0012"), 1),
        ("Job: summarize pdf", "job fee, 2 model calls", Decimal("-0.001015"), 3),
        ("Chat (deleted)", "1 model call", Decimal("-0.00006"), 1),
        ("Chat: Trip to Rome", "2 model calls", Decimal("-0.0007"), 2),
        ("Chat: Trip to Rome", "3 model calls", Decimal("-0.0008"), 3),
        ("Grant by admin: welcome", None, Decimal(5), 1),
        ("Sign-up grant", None, Decimal(10), 1),
    ]
    assert {line.cause_id for line in lines[3:5]} == {first.id, second.id}
    # Each line shows the balance after its newest entry; the ledger itself keeps one entry per call.
    history = (await credits.history(user, limit=50, cursor=None)).items
    assert len(history) == 12
    newest = {entry.id: entry.balance_after for entry in history}
    assert all(newest[line.id] == line.balance_after for line in lines)
    assert lines[0].balance_after == (await credits.balance(user)).balance
    assert sum(line.amount for line in lines) == sum(entry.amount for entry in history)


async def test_pages_of_lines_never_repeat_or_skip(services: Services) -> None:
    credits = services.core.credits
    user = (await register(services.core.db, "pager@example.com", on_register=credits.open_account)).id
    runs = [run(user, "chat", None) for _ in range(5)]
    await add(services, *runs)
    for index in range(15):
        await pay(credits, user, 10 + index, "run", runs[index % 5].id)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await credits.statement(user, limit=2, cursor=cursor)
        seen += [line.cause_id or line.id for line in page.items]
        assert all(line.entries == 3 for line in page.items if line.cause_type == "run")
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 6 and len(set(seen)) == 6  # five turns and the sign-up grant


async def test_labels_come_only_from_the_callers_own_objects(services: Services) -> None:
    credits = services.core.credits
    owner = (await register(services.core.db, "owner@example.com", on_register=credits.open_account)).id
    other = (await register(services.core.db, "other@example.com", on_register=credits.open_account)).id
    secret = chat(owner, "Owner's secret plans")
    turn = run(owner, "chat", secret.id)
    await add(services, secret, turn)
    # A charge of the other user that names the owner's run and chat (as a forged cause would).
    await pay(credits, other, 10, "run", turn.id)
    await credits.charge(other, 10, cause_type="chat", cause_id=secret.id)
    labels = [line.label for line in (await credits.statement(other, limit=10, cursor=None)).items]
    assert labels == ["Chat", "Model calls", "Sign-up grant"]
    assert await services.core.references.describe(other, [turn.id, secret.id]) == {}
    assert await services.core.references.describe(owner, [turn.id, secret.id, "zzz_1", "chs_missing"]) == {
        turn.id: "Chat: Owner's secret plans",
        secret.id: "Chat: Owner's secret plans",
    }
