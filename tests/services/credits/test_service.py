"""Credits against a real database, SQLite and PostgreSQL: concurrency, holds, crash recovery."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import col, select, update

from services.auth.models import Role
from services.credits import CreditService, GrantRequest
from services.credits.models import CreditHold
from services.db import Database
from services.errors import InsufficientCreditsError, PermissionDeniedError
from services.instances import LiveInstances
from services.settings import CreditsSettings, DatabaseSettings
from tests.factories import principal, register

CREDIT = 1_000_000


@pytest.fixture
def db_settings() -> DatabaseSettings:
    return DatabaseSettings(pool_size=20)  # fifty concurrent charges


ADMIN = principal("usr_admin", role=Role.ADMIN)


def service(db: Database, signup_grant: float = 0, owner: str = "ins_here") -> CreditService:
    return CreditService(db=db, settings=CreditsSettings(signup_grant=signup_grant), owner=owner)


async def user_with(db: Database, credits: CreditService, amount: str, email: str = "a@example.com") -> str:
    user = await register(db, email, on_register=credits.open_account)
    if Decimal(amount) > 0:
        await credits.grant(ADMIN, GrantRequest(user_id=user.id, amount=Decimal(amount), reason="test"))
    return user.id


async def test_only_an_admin_with_the_admin_scope_grants(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "0")
    request = GrantRequest(user_id=user, amount=Decimal(5))
    for caller in (principal(user), principal("usr_admin", role=Role.ADMIN, scopes=["credits"])):
        with pytest.raises(PermissionDeniedError):
            await credits.grant(caller, request)
    assert (await credits.balance(user)).balance == 0
    await credits.grant(principal("usr_admin", role=Role.ADMIN, scopes=["admin"]), request)
    assert (await credits.balance(user)).balance == 5


async def test_the_signup_grant_is_in_the_ledger(db: Database) -> None:
    credits = service(db, 5)
    user = await user_with(db, credits, "0")
    assert (await credits.balance(user)).balance == Decimal("5")
    history = await credits.history(user, limit=10, cursor=None)
    assert [(e.kind, e.amount, e.cause_type) for e in history.items] == [("grant", Decimal("5"), "signup")]
    await credits.open_account(user)  # idempotent
    assert await credits.ledger_sum(user) == 5 * CREDIT


async def test_fifty_concurrent_charges_against_thirty_credits_make_exactly_thirty(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "30")

    async def charge(index: int) -> bool:
        try:
            await credits.charge(user, CREDIT, cause_type="test", cause_id=str(index))
        except InsufficientCreditsError:
            return False
        return True

    results = await asyncio.gather(*(charge(i) for i in range(50)))
    assert sum(results) == 30
    balance = await credits.balance(user)
    assert balance.balance == 0 and balance.available == 0
    assert await credits.ledger_sum(user) == 0
    entries = (await credits.history(user, limit=200, cursor=None)).items
    assert min(e.balance_after for e in entries) >= 0
    assert len([e for e in entries if e.kind == "charge"]) == 30


async def test_a_charge_is_idempotent_by_key(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "3")
    first = await credits.charge(user, CREDIT, idempotency_key="job-1")
    again = await credits.charge(user, CREDIT, idempotency_key="job-1")
    assert first.id == again.id and (await credits.balance(user)).balance == 2


async def test_holds_reserve_and_settle_without_going_negative(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "2")
    hold = await credits.hold(user, at_most=5 * CREDIT, at_least=CREDIT, cause_type="run", cause_id="r1")
    assert hold.amount_micro == 2 * CREDIT  # lowered to what is available
    balance = await credits.balance(user)
    assert (balance.balance, balance.held, balance.available) == (2, 2, 0)
    with pytest.raises(InsufficientCreditsError):
        await credits.charge(user, 1)  # what is held is not available
    with pytest.raises(InsufficientCreditsError):
        await credits.hold(user, at_most=CREDIT, at_least=1, cause_type="run", cause_id="r2")
    async with db.transaction() as session:  # in the caller's transaction, as a sandbox settles its minutes
        settled = await credits.settle(hold, CREDIT // 2, session=session)
    assert (settled.charged_micro, settled.balance_micro) == (CREDIT // 2, 3 * CREDIT // 2)
    balance = await credits.balance(user)
    assert (balance.balance, balance.held) == (Decimal("1.5"), 0)
    assert await credits.ledger_sum(user) == 3 * CREDIT // 2


async def test_holds_of_an_instance_that_is_gone_are_released_and_a_live_ones_kept(db: Database) -> None:
    dead, alive = service(db, owner="ins_dead"), service(db, owner="ins_alive")
    user = await user_with(db, dead, "4")
    await dead.hold(user, at_most=3 * CREDIT, cause_type="run", cause_id="killed")
    kept = await alive.hold(user, at_most=CREDIT // 2, cause_type="run", cause_id="running")
    assert (await dead.balance(user)).held == Decimal("3.5")
    # ins_dead is gone (its lease ran out); ins_alive still holds its lease.
    assert await alive.release_orphaned(LiveInstances(frozenset({"ins_alive"}))) == 1
    balance = await alive.balance(user)
    assert (balance.balance, balance.held, balance.available) == (4, Decimal("0.5"), Decimal("3.5"))
    await alive.release(kept)
    assert (await alive.balance(user)).held == 0


async def test_daily_spend_adds_up_the_charges(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "10")
    await credits.charge(user, 2 * CREDIT)
    await credits.charge(user, CREDIT // 4)
    days = await credits.spend_by_day(user, days=7)
    assert len(days) == 8 and days[-1].credits == Decimal("2.25") and sum(d.credits for d in days) == Decimal("2.25")


async def held_in_rows(db: Database, user: str) -> int:
    """What the hold rows add up to: the account's ``held_micro`` must always equal it."""
    async with db.transaction(readonly=True) as session:
        rows = (await session.exec(select(CreditHold).where(CreditHold.user_id == user))).all()
    return sum(row.amount_micro for row in rows)


async def test_a_hold_extends_up_to_what_is_available(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "3")
    hold = await credits.hold(user, at_most=CREDIT, cause_type="run", cause_id="r1")
    grown = await credits.extend(hold, at_most=CREDIT)
    assert (grown.id, grown.amount_micro) == (hold.id, 2 * CREDIT)
    with pytest.raises(InsufficientCreditsError):  # all of it, or nothing (the default)
        await credits.extend(grown, at_most=2 * CREDIT)
    assert (await credits.balance(user)).held == 2
    partly = await credits.extend(grown, at_most=5 * CREDIT, at_least=CREDIT // 2)
    assert partly.amount_micro == 3 * CREDIT  # lowered to what was left
    assert await credits.extend(partly, at_most=CREDIT, at_least=0) == partly  # nothing left, nothing written
    balance = await credits.balance(user)
    assert (balance.balance, balance.held, balance.available) == (3, 3, 0)
    assert await held_in_rows(db, user) == 3 * CREDIT
    settled = await credits.settle(partly, 2 * CREDIT + 1)  # the hold goes, whatever it grew to
    assert settled.charged_micro == 2 * CREDIT + 1
    balance = await credits.balance(user)
    assert balance.held == 0 and balance.balance == Decimal("0.999999")


async def test_a_hold_that_is_gone_cannot_grow(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "5")
    released = await credits.hold(user, at_most=CREDIT, cause_type="run", cause_id="r1")
    await credits.release(released)
    lapsed = await credits.hold(user, at_most=CREDIT, cause_type="run", cause_id="r2", ttl_s=10)
    async with db.transaction() as session:  # its time ran out
        await session.exec(update(CreditHold).where(col(CreditHold.id) == lapsed.id)
                           .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
    assert await credits.release_expired() == 1
    for gone in (released, lapsed):
        with pytest.raises(InsufficientCreditsError):
            await credits.extend(gone, at_most=CREDIT, at_least=0)
    balance = await credits.balance(user)
    assert (balance.held, balance.available) == (0, 5)  # nothing held for a hold that is not there


async def test_concurrent_extensions_and_holds_never_hold_more_than_the_balance(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "10")
    holds = [await credits.hold(user, at_most=CREDIT, cause_type="run", cause_id=f"r{i}") for i in range(4)]

    async def grow(index: int) -> int:
        try:
            grown = await credits.extend(holds[index % 4], at_most=CREDIT // 2)
        except InsufficientCreditsError:
            return 0
        return grown.amount_micro - holds[index % 4].amount_micro

    async def take(index: int) -> int:
        try:
            return (await credits.hold(user, at_most=CREDIT // 2, cause_type="run", cause_id=f"n{index}")).amount_micro
        except InsufficientCreditsError:
            return 0

    results = await asyncio.gather(*(grow(i) if i % 2 else take(i) for i in range(40)))
    assert sum(results) == 6 * CREDIT  # exactly what was left after the first four, in halves
    assert len([r for r in results if r]) == 12
    balance = await credits.balance(user)
    assert (balance.balance, balance.held, balance.available) == (10, 10, 0)
    assert await held_in_rows(db, user) == 10 * CREDIT


async def test_a_settlement_never_takes_what_other_work_holds(db: Database) -> None:
    credits = service(db)
    user = await user_with(db, credits, "3")
    small = await credits.hold(user, at_most=CREDIT, cause_type="run", cause_id="cheap-hold")
    other = await credits.hold(user, at_most=2 * CREDIT, cause_type="sandbox", cause_id="other-work")
    settled = await credits.settle(small, 5 * CREDIT)  # it cost more than it held: only its own hold is there
    assert (settled.charged_micro, settled.balance_micro) == (CREDIT, 2 * CREDIT)
    balance = await credits.balance(user)
    assert (balance.balance, balance.held, balance.available) == (2, 2, 0)
    await credits.settle(other, 2 * CREDIT)
    assert (await credits.balance(user)).balance == 0 and await credits.ledger_sum(user) == 0
