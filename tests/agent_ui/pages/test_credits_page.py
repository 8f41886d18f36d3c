"""Credits in the UI: header badge, Settings → Credits (a statement of human lines, 4 decimals), the admin's grant."""

from __future__ import annotations

import asyncio
import re

from nicegui.testing import User
from sqlmodel import select

from services.auth.models import User as UserRow
from services.credits import CreditService
from services.db import Database
from services.settings import CreditsSettings, DatabaseSettings
from tests.agent_ui.pages.test_auth_pages import register_in_ui
from tests.agent_ui.pages.test_chat_page import ask
from tests.upstream import ScriptedUpstream, Step, words

FOUR_DECIMALS = re.compile(r"^[+-]?[0-9,]+\.\d{4}$")


def text(user: User, marker: str) -> str:
    return next(iter(user.find(marker=marker).elements)).text  # type: ignore[attr-defined]


def texts(user: User, marker: str) -> list[str]:
    """The texts of the elements with this marker, in the order the page shows them."""
    return [element.text for element in sorted(user.find(marker=marker).elements, key=lambda e: e.id)]  # type: ignore[attr-defined]


async def test_the_header_and_settings_show_the_balance_and_statement(ui_env: str, user: User) -> None:
    await register_in_ui(user, "money@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.should_see("10.0000 credits", retries=50)  # the header badge
    await user.open("/settings")
    await user.should_see(marker="ledger-line", retries=50)
    assert text(user, "credits-balance") == "10.0000" and text(user, "credits-available") == "10.0000"
    assert texts(user, "ledger-line-title") == ["Sign-up grant"]
    assert texts(user, "ledger-line-amount") == ["+10.0000"] and texts(user, "ledger-line-after") == ["balance 10.0000"]
    await user.should_not_see("signup")
    await user.should_see("No chats yet.")
    await user.should_see(marker="spend-chart")


async def test_a_turns_model_calls_are_one_line_titled_by_its_chat(
    ui_env: str, user: User, upstream: ScriptedUpstream
) -> None:
    await register_in_ui(user, "turns@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    upstream.push(Step(tool_calls=[("calculator", {"expression": "6*7"})]), Step(text=words("It is 42.")))
    await ask(user, "6 times 7?")
    await user.should_see("It is 42.", retries=100)
    usage = next(iter(user.find(marker="usage").elements))
    for _ in range(100):  # the usage is shown once the turn is paid
        if "tokens" in usage.text:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.05)
    await user.open("/settings")
    await user.should_see(marker="ledger-line", retries=50)
    assert texts(user, "ledger-line-title") == ["Chat: 6 times 7?", "Sign-up grant"]  # two calls, one line
    assert "2 model calls" in texts(user, "ledger-line-detail")[0]
    amounts = texts(user, "ledger-line-amount")
    assert amounts[0].startswith("-") and all(FOUR_DECIMALS.match(amount) for amount in amounts)
    assert texts(user, "usage-line-title") == ["Chat: 6 times 7?"]
    assert texts(user, "usage-line-amount") == [amounts[0].removeprefix("-")]  # what the chat used, all of it
    assert FOUR_DECIMALS.match(text(user, "credits-balance"))
    await user.should_not_see("chs_")
    await user.should_not_see("run_")


async def test_an_admin_grants_credits_from_the_users_page(ui_env: str, user: User) -> None:
    await register_in_ui(user, "boss@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/admin/users")
    await user.should_see(marker="grant-boss@example.com", retries=50)
    user.find(marker="grant-boss@example.com").click()
    user.find(marker="grant-amount").clear().type("2.5")
    user.find(marker="grant-reason").type("welcome")
    user.find(marker="grant-submit").click()
    await user.should_see("12.5000 credits", retries=50)
    await user.open("/settings")
    await user.should_see(marker="ledger-line", retries=50)
    assert texts(user, "ledger-line-title") == ["Grant by admin: welcome", "Sign-up grant"]
    assert texts(user, "ledger-line-amount") == ["+2.5000", "+10.0000"]


async def test_the_statement_shows_more_a_page_at_a_time(ui_env: str, user: User) -> None:
    await register_in_ui(user, "many@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    db = Database(ui_env, DatabaseSettings())  # a second process's view of the same database
    try:
        async with db.transaction(readonly=True) as session:
            user_id = (await session.exec(select(UserRow.id).where(UserRow.email == "many@example.com"))).one()
        credits = CreditService(db=db, settings=CreditsSettings(), owner="ins_other")
        for index in range(30):
            await credits.charge(user_id, 1000, cause_type="export", cause_id=f"exp_{index}", reason=f"export {index}")
    finally:
        await db.stop()
    await user.open("/settings")
    await user.should_see(marker="ledger-more", retries=50)
    titles = texts(user, "ledger-line-title")
    assert len(titles) == 25 and titles[:2] == ["Export 29", "Export 28"]
    user.find(marker="ledger-more").click()
    for _ in range(100):
        if len(user.find(marker="ledger-line").elements) == 31:
            break
        await asyncio.sleep(0.05)
    titles = texts(user, "ledger-line-title")
    assert titles[24:] == ["Export 5", "Export 4", "Export 3", "Export 2", "Export 1", "Export 0", "Sign-up grant"]
    await user.should_not_see(marker="ledger-more")
