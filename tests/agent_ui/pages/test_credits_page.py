"""Credits in the UI: header badge, Settings → Credits, and the admin's grant action."""

from __future__ import annotations

from nicegui.testing import User

from tests.agent_ui.pages.test_auth_pages import register_in_ui


def text(user: User, marker: str) -> str:
    return next(iter(user.find(marker=marker).elements)).text  # type: ignore[attr-defined]


async def test_the_header_and_settings_show_the_balance_and_ledger(ui_env: str, user: User) -> None:
    await register_in_ui(user, "money@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.should_see("10.0000 credits", retries=50)  # the header badge
    await user.open("/settings")
    await user.should_see(marker="ledger-table", retries=50)
    assert text(user, "credits-balance") == "10.000000" and text(user, "credits-available") == "10.000000"
    rows = next(iter(user.find(marker="ledger-table").elements)).rows  # type: ignore[attr-defined]
    assert [(row["kind"], row["amount"], row["cause"]) for row in rows] == [
        ("grant", "+10.000000", "signup signup grant")
    ]
    await user.should_see(marker="spend-chart")


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
