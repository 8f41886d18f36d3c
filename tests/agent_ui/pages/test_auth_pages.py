"""Pages through the NiceGUI `user` fixture: no browser, the real app built from main.py."""

from __future__ import annotations

import pytest
from nicegui.testing import User

# The database plays no part here (its own tests run on SQLite and PostgreSQL): SQLite only, to keep the suite fast.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PASSWORD = "correct horse battery"


async def register_in_ui(user: User, email: str, password: str = PASSWORD) -> None:
    await user.open("/register")
    user.find(marker="email").type(email)
    user.find(marker="password").type(password)
    user.find(marker="confirm").type(password)
    user.find(marker="submit").click()


async def test_signed_out_visitors_are_sent_to_login(ui_env: str, user: User) -> None:
    for path in ["/", "/settings", "/sandboxes", "/admin/users"]:
        await user.open(path)
        await user.should_see("Sign in")
        await user.should_see(marker="submit")


async def test_register_signs_in_and_shows_the_shell(ui_env: str, user: User) -> None:
    await register_in_ui(user, "first@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    for marker in ["nav-chat", "nav-generate", "nav-sandboxes", "nav-resources", "nav-settings", "nav-users"]:
        await user.should_see(marker=marker)
    await user.open("/settings")
    await user.should_see("first@example.com · admin")


async def test_wrong_password_shows_an_error_and_stays_signed_out(ui_env: str, user: User) -> None:
    await register_in_ui(user, "a@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    user.http_client.cookies.clear()
    await user.open("/login")
    user.find(marker="email").type("a@example.com")
    user.find(marker="password").type("wrong password")
    user.find(marker="submit").click()
    await user.should_see("wrong email or password", retries=100)
    await user.open("/settings")
    await user.should_see(marker="submit")  # still the login form


@pytest.fixture
def strict_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """One free failure, then two minutes (request it before `user`, which builds the app from the environment)."""
    monkeypatch.setenv("AGENT_UI_AUTH__LOGIN_THROTTLE__ACCOUNT_FREE_FAILURES", "1")
    monkeypatch.setenv("AGENT_UI_AUTH__LOGIN_THROTTLE__LOCKOUT_BASE_S", "120")


async def sign_in(user: User, email: str, password: str) -> None:
    await user.open("/login")  # a fresh form each time: no message of an earlier try on it
    user.find(marker="email").type(email)
    user.find(marker="password").type(password)
    user.find(marker="submit").click()


async def test_repeated_wrong_passwords_lock_the_sign_in_and_say_for_how_long(
    ui_env: str, strict_throttle: None, user: User
) -> None:
    await register_in_ui(user, "a@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    user.http_client.cookies.clear()
    for guess in ("guess one", "guess two"):
        await sign_in(user, "a@example.com", guess)
        await user.should_see("wrong email or password", retries=100)
    await sign_in(user, "a@example.com", "guess three")
    await user.should_see("Too many sign-in attempts. Try again in 2 minutes.", retries=100)
    await sign_in(user, "a@example.com", PASSWORD)  # the right password waits too
    await user.should_see("Too many sign-in attempts. Try again in 2 minutes.", retries=100)
    await user.open("/settings")
    await user.should_see(marker="submit")  # still the login form


async def test_register_refuses_mismatched_and_short_passwords(ui_env: str, user: User) -> None:
    await user.open("/register")
    user.find(marker="email").type("a@example.com")
    user.find(marker="password").type("short")
    user.find(marker="confirm").type("short")
    user.find(marker="submit").click()
    await user.should_see("Password: must be 8 to 256 characters long", retries=50)
    user.find(marker="confirm").type("-different")
    user.find(marker="submit").click()
    await user.should_see("The passwords differ.", retries=50)


async def test_settings_creates_a_key_shown_once_then_lists_and_revokes_it(ui_env: str, user: User) -> None:
    await register_in_ui(user, "a@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/settings")
    await user.should_see(marker="no-keys", retries=50)
    user.find(marker="key-name").type("my script")
    user.find(marker="create-key").click()
    await user.should_see("Copy it now", retries=50)
    shown = user.find(marker="new-key").elements.pop()
    key = shown.value  # type: ignore[attr-defined]
    assert key.startswith("sk_")
    user.find(marker="close-key").click()
    await user.should_see("my script")

    await user.open("/settings")  # reload: the key is listed, its secret is not shown again
    await user.should_see("my script")
    await user.should_not_see(key.removeprefix("sk_")[:20])  # (its random part may itself hold "sk_")
    assert len(user.find(marker="revoke-key").elements) == 1
    user.find(marker="revoke-key").click()
    user.find(marker="confirm-revoke").click()
    await user.should_see(marker="no-keys", retries=50)


async def test_users_page_is_for_admins_only(ui_env: str, user: User) -> None:
    await register_in_ui(user, "admin@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.open("/admin/users")
    await user.should_see("admin@example.com  (you)")

    user.http_client.cookies.clear()
    await register_in_ui(user, "plain@example.com")
    await user.should_see(marker="empty-thread", retries=100)
    await user.should_not_see(marker="nav-users")
    await user.open("/admin/users")
    await user.should_see(marker="empty-thread", retries=100)  # sent home
