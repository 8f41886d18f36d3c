"""Credits against a real database, SQLite and PostgreSQL: concurrency, holds, crash recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from services.auth import AuthService
from services.auth.cache import PrincipalCache
from services.auth.schemas import RegisterRequest
from services.auth.tokens import TokenDigester
from services.credits import CreditService, GrantRequest
from services.db import Database
from services.errors import InsufficientCreditsError
from services.settings import AuthSettings, CreditsSettings, DatabaseSettings

CREDIT = 1_000_000


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, DatabaseSettings(pool_size=20))
    await database.start()
    yield database
    await database.stop()


async def user_with(db: Database, credits: CreditService, amount: str, email: str = "a@example.com") -> str:
    auth = AuthService(
        db=db,
        digester=TokenDigester(b"k" * 32),
        principals=PrincipalCache(0),
        settings=AuthSettings(),
        on_register=credits.open_account,
    )
    user = await auth.register(RegisterRequest(email=email, password="password-123"))
    if Decimal(amount) > 0:
        await credits.grant(GrantRequest(user_id=user.id, amount=Decimal(amount), reason="test"))
    return user.id


async def test_the_signup_grant_is_in_the_ledger(db: Database) -> None:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=5))
    user = await user_with(db, credits, "0")
    assert (await credits.balance(user)).balance == Decimal("5")
    history = await credits.history(user, limit=10, cursor=None)
    assert [(e.kind, e.amount, e.cause_type) for e in history.items] == [("grant", Decimal("5"), "signup")]
    await credits.open_account(user)  # idempotent
    assert await credits.ledger_sum(user) == 5 * CREDIT


async def test_fifty_concurrent_charges_against_thirty_credits_make_exactly_thirty(db: Database) -> None:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=0))
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
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=0))
    user = await user_with(db, credits, "3")
    first = await credits.charge(user, CREDIT, idempotency_key="job-1")
    again = await credits.charge(user, CREDIT, idempotency_key="job-1")
    assert first.id == again.id and (await credits.balance(user)).balance == 2


async def test_holds_reserve_and_settle_without_going_negative(db: Database) -> None:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=0))
    user = await user_with(db, credits, "2")
    hold, amount = await credits.hold_up_to(user, at_most=5 * CREDIT, at_least=CREDIT, cause_type="run", cause_id="r1")
    assert amount == 2 * CREDIT  # lowered to what is available
    balance = await credits.balance(user)
    assert (balance.balance, balance.held, balance.available) == (2, 2, 0)
    with pytest.raises(InsufficientCreditsError):
        await credits.charge(user, 1)  # what is held is not available
    with pytest.raises(InsufficientCreditsError):
        await credits.hold_up_to(user, at_most=CREDIT, at_least=1, cause_type="run", cause_id="r2")
    async with db.transaction() as session:
        charged, after = await credits.settle_in(session, hold, user, CREDIT // 2, cause_type="run", cause_id="r1")
    assert (charged, after) == (CREDIT // 2, 3 * CREDIT // 2)
    balance = await credits.balance(user)
    assert (balance.balance, balance.held) == (Decimal("1.5"), 0)
    assert await credits.ledger_sum(user) == 3 * CREDIT // 2


async def test_holds_of_a_dead_process_are_released_at_start(db: Database) -> None:
    before = CreditService(db=db, settings=CreditsSettings(signup_grant=0))
    user = await user_with(db, before, "4")
    await before.hold_up_to(user, at_most=3 * CREDIT, at_least=1, cause_type="run", cause_id="killed")
    assert (await before.balance(user)).held == 3
    # The process is killed; a new one starts on the same database.
    after = CreditService(db=db, settings=CreditsSettings(signup_grant=0))
    await after.start()
    balance = await after.balance(user)
    assert (balance.balance, balance.held, balance.available) == (4, 0, 4)
    await after.stop()


async def test_daily_spend_adds_up_the_charges(db: Database) -> None:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=0))
    user = await user_with(db, credits, "10")
    await credits.charge(user, 2 * CREDIT)
    await credits.charge(user, CREDIT // 4)
    days = await credits.spend_by_day(user, days=7)
    assert len(days) == 8 and days[-1].credits == Decimal("2.25") and sum(d.credits for d in days) == Decimal("2.25")
