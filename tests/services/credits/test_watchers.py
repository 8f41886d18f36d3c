"""Balance change notification: listeners hear each committed change of their user, never a rolled-back one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.auth.models import Role
from services.credits import CreditService, GrantRequest
from services.db import Database
from services.errors import InsufficientCreditsError
from services.settings import CreditsSettings
from tests.factories import principal, register

ADMIN = principal("usr_admin", role=Role.ADMIN)
CREDIT = 1_000_000


async def test_listeners_hear_committed_changes_of_their_user_only(db: Database) -> None:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=0), owner="ins_here")
    alice = (await register(db, "alice@example.com", on_register=credits.open_account)).id
    bob = (await register(db, "bob@example.com", on_register=credits.open_account)).id
    heard: list[str] = []
    unsubscribe = credits.subscribe(alice, heard.append)
    await credits.grant(ADMIN, GrantRequest(user_id=alice, amount=Decimal(3)))
    await credits.grant(ADMIN, GrantRequest(user_id=bob, amount=Decimal(3)))  # not alice's
    assert heard == [alice]

    hold = await credits.hold(alice, at_most=CREDIT, cause_type="test", cause_id="t1")
    hold = await credits.extend(hold, at_most=CREDIT)
    await credits.settle(hold, CREDIT)
    second = await credits.hold(alice, at_most=CREDIT, cause_type="test", cause_id="t2")
    await credits.release(second)
    await credits.charge(alice, CREDIT // 2)
    assert heard == [alice] * 7

    with pytest.raises(InsufficientCreditsError):  # refused: nothing changed, nothing heard
        await credits.hold(alice, at_most=100 * CREDIT, cause_type="test", cause_id="t3")
    with pytest.raises(RuntimeError):  # a hold inside a transaction that rolls back is never announced
        async with db.transaction() as session:
            await credits.hold(alice, at_most=CREDIT, cause_type="test", cause_id="t4", session=session)
            raise RuntimeError("the caller's work failed")
    assert len(heard) == 7
    assert (await credits.balance(alice)).held == 0

    unsubscribe()
    await credits.grant(ADMIN, GrantRequest(user_id=alice, amount=Decimal(1)))
    assert len(heard) == 7


async def test_a_broken_listener_fails_neither_the_change_nor_the_others(db: Database) -> None:
    credits = CreditService(db=db, settings=CreditsSettings(signup_grant=0), owner="ins_here")
    alice = (await register(db, "alice@example.com", on_register=credits.open_account)).id
    heard: list[str] = []

    def broken(_user_id: str) -> None:
        raise ValueError("boom")

    credits.subscribe(alice, broken)
    credits.subscribe(alice, heard.append)
    await credits.grant(ADMIN, GrantRequest(user_id=alice, amount=Decimal(2)))
    assert heard == [alice]
    assert (await credits.balance(alice)).balance == 2
