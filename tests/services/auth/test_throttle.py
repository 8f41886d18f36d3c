"""Sign-in throttling: the throttle's schedule on its own, then the attack through AuthService on both databases.
Time is a clock the test moves; nothing sleeps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from pydantic import SecretStr

from services.auth import AuthService, LoginThrottledError, MemoryLoginThrottle
from services.auth.cache import PrincipalCache
from services.auth.passwords import Passwords
from services.auth.schemas import RegisterRequest
from services.auth.throttle import Outcome, client_key
from services.auth.tokens import TokenDigester
from services.db import Database
from services.errors import AuthenticationError
from services.settings import AuthSettings, DatabaseSettings, LoginThrottleSettings

PASSWORD = "password-123"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class CountingHasher(PasswordHasher):
    """Real argon2id at its lowest cost that counts the passwords it checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


def throttle_settings(**changes: Any) -> LoginThrottleSettings:
    defaults = {"account_free_failures": 5, "client_free_failures": 20, "lockout_base_s": 1, "lockout_max_s": 60,
                "forget_after_s": 600}  # fmt: skip
    return LoginThrottleSettings.model_validate(defaults | changes)


async def attempt(throttle: MemoryLoginThrottle, account: str, client: str, outcome: Outcome) -> int | None:
    """One sign-in: None when it was let through (and settled), else the seconds it was told to wait."""
    try:
        await throttle.admit(account, client)
    except LoginThrottledError as refused:
        return refused.retry_after_s
    await throttle.settle(account, client, outcome)
    return None


# -- the throttle alone ------------------------------------------------------------------------------------


async def test_free_failures_then_lockouts_that_double_up_to_the_cap() -> None:
    clock = FakeClock()
    throttle = MemoryLoginThrottle(throttle_settings(), clock=clock)
    for _ in range(5):
        assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) is None
    waits = []
    for _ in range(9):
        assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) is None  # the lockout is over: one try
        wait = await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED)
        assert wait is not None
        waits.append(wait)
        clock.advance(wait - 0.5)
        assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.SUCCEEDED) is not None  # not over yet
        clock.advance(0.5)
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


async def test_a_success_clears_the_account_but_not_the_client() -> None:
    clock = FakeClock()
    throttle = MemoryLoginThrottle(throttle_settings(client_free_failures=8), clock=clock)
    for _ in range(5):
        await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED)
    assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.SUCCEEDED) is None
    for _ in range(3):  # the account starts again from zero; the client has 8 failures now
        assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) is None
    assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) is None  # the client's 9th: locks it
    assert await attempt(throttle, "b@x.io", "10.0.0.1", Outcome.SUCCEEDED) == 1  # any account, from that client
    assert await attempt(throttle, "a@x.io", "10.0.0.2", Outcome.FAILED) is None  # the account, from elsewhere


async def test_concurrent_checks_get_no_more_tries_than_sequential_ones() -> None:
    clock = FakeClock()
    throttle = MemoryLoginThrottle(throttle_settings(), clock=clock)
    admitted, refused = 0, 0
    for _ in range(50):  # 50 checks started before any ends
        try:
            await throttle.admit("a@x.io", "10.0.0.1")
            admitted += 1
        except LoginThrottledError as error:
            assert error.retry_after_s == 1
            refused += 1
    assert (admitted, refused) == (6, 44)  # the 5 free failures and the one whose failure locks
    for _ in range(admitted):
        await throttle.settle("a@x.io", "10.0.0.1", Outcome.FAILED)
    assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) == 1


async def test_an_abandoned_check_counts_nothing_and_failures_are_forgotten() -> None:
    clock = FakeClock()
    throttle = MemoryLoginThrottle(throttle_settings(forget_after_s=600), clock=clock)
    for _ in range(20):
        assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.ABANDONED) is None
    for _ in range(6):
        assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) is None
    assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) == 1
    clock.advance(1 + 600)  # the lockout ended 600 s ago
    for _ in range(6):
        assert await attempt(throttle, "a@x.io", "10.0.0.1", Outcome.FAILED) is None


async def test_memory_is_bounded_and_a_running_check_is_never_forgotten() -> None:
    throttle = MemoryLoginThrottle(throttle_settings(max_tracked=100), clock=FakeClock())
    await throttle.admit("victim@x.io", "10.9.9.9")
    for i in range(500):
        await attempt(throttle, f"u{i}@x.io", f"10.0.{i // 250}.{i % 250}", Outcome.FAILED)
    assert len(throttle._counts) <= 100
    assert "account:victim@x.io" in throttle._counts


def test_clients_are_ips_and_an_ipv6_host_is_its_64() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key(None) == "unknown"


# -- the attack, through AuthService -----------------------------------------------------------------------


def make_service(db: Database, clock: FakeClock, hasher: PasswordHasher, **throttle: Any) -> AuthService:
    return AuthService(
        db=db,
        digester=TokenDigester(b"k" * 32),
        principals=PrincipalCache(0),
        settings=AuthSettings(login_throttle=throttle_settings(**throttle)),
        passwords=Passwords(hasher),
        clock=clock,
    )


async def outcomes(service: AuthService, email: str, password: str, times: int, client: str) -> list[str]:
    seen = []
    for _ in range(times):
        try:
            await service.verify_credentials(email, password, client_ip=client)
            seen.append("ok")
        except LoginThrottledError as error:
            seen.append(f"429:{error.retry_after_s}:{error.message}")
        except AuthenticationError as error:
            seen.append(f"401:{error.code}")
    return seen


async def test_fifty_wrong_passwords_are_throttled_before_any_password_check(db: Database) -> None:
    clock, hasher = FakeClock(), CountingHasher()
    service = make_service(db, clock, hasher, lockout_base_s=30)
    await service.register(RegisterRequest(email="a@example.com", password=SecretStr(PASSWORD)))
    hasher.verified = 0

    seen = await outcomes(service, "a@example.com", "wrong guess", 50, "10.0.0.1")
    assert seen[:6] == ["401:invalid_credentials"] * 6
    assert set(seen[6:]) == {"429:30:too many sign-in attempts; try again in 30 seconds"}
    assert hasher.verified == 6  # the other 44 never reached the password
    assert await outcomes(service, "a@example.com", PASSWORD, 1, "10.0.0.1") == [seen[-1]]  # the right one too
    assert hasher.verified == 6

    clock.advance(30)
    assert await outcomes(service, "A@Example.com ", PASSWORD, 1, "10.0.0.1") == ["ok"]
    # The success cleared the account: five free failures again (the next one locks for 30 s again).
    assert await outcomes(service, "a@example.com", "wrong guess", 7, "10.0.0.2") == ["401:invalid_credentials"] * 6 + [
        "429:30:too many sign-in attempts; try again in 30 seconds"
    ]


async def test_an_unknown_email_is_throttled_exactly_like_a_known_one(db: Database) -> None:
    clock = FakeClock()
    service = make_service(db, clock, CountingHasher(), lockout_base_s=2)
    await service.register(RegisterRequest(email="known@example.com", password=SecretStr(PASSWORD)))
    runs = {}
    for email in ("known@example.com", "nobody@example.com"):
        run = await outcomes(service, email, "wrong guess", 9, "10.0.0.1" if email.startswith("k") else "10.0.0.2")
        clock.advance(2)
        run += await outcomes(service, email, "wrong guess", 3, "10.0.0.3")
        runs[email] = run
        clock.advance(3600)
    assert runs["known@example.com"] == runs["nobody@example.com"]
    assert runs["known@example.com"].count("401:invalid_credentials") == 7


async def test_one_client_spraying_many_accounts_is_throttled(db: Database) -> None:
    clock = FakeClock()
    service = make_service(db, clock, CountingHasher(), client_free_failures=20, lockout_base_s=60)
    await service.register(RegisterRequest(email="victim@example.com", password=SecretStr(PASSWORD)))
    sprayed = [
        (await outcomes(service, f"user{i}@example.com", "Summer2026!", 1, "198.51.100.7"))[0] for i in range(25)
    ]
    assert sprayed[:21] == ["401:invalid_credentials"] * 21
    assert set(sprayed[21:]) == {"429:60:too many sign-in attempts; try again in 1 minute"}
    assert (await outcomes(service, "victim@example.com", PASSWORD, 1, "198.51.100.7"))[0].startswith("429:")
    assert await outcomes(service, "victim@example.com", PASSWORD, 1, "192.0.2.1") == ["ok"]  # another client


async def test_concurrent_guesses_are_throttled_like_sequential_ones(db: Database) -> None:
    hasher = CountingHasher()
    service = make_service(db, FakeClock(), hasher, lockout_base_s=30)
    await service.register(RegisterRequest(email="a@example.com", password=SecretStr(PASSWORD)))
    hasher.verified = 0

    async def guess(i: int) -> str:
        return (await outcomes(service, "a@example.com", f"guess {i}", 1, f"10.1.0.{i}"))[0]

    seen = await asyncio.gather(*(guess(i) for i in range(40)))
    assert seen.count("401:invalid_credentials") == 6
    assert hasher.verified == 6
    assert all(s.startswith("429:") for s in seen if not s.startswith("401"))


async def test_the_product_hashes_at_argon2ids_default_cost(db: Database) -> None:
    """Only tests pass a cheap hasher: a service built without one uses argon2's default parameters."""
    service = AuthService(db=db, digester=TokenDigester(b"k" * 32), principals=PrincipalCache(0),
                          settings=AuthSettings())  # fmt: skip
    await service.register(RegisterRequest(email="a@example.com", password=SecretStr(PASSWORD)))
    async with db.transaction(readonly=True) as session:
        from services.auth.repository import user_by_email

        user = await user_by_email(session, "a@example.com")
    assert user is not None
    default = PasswordHasher()
    assert user.password_hash.startswith(
        f"$argon2id$v=19$m={default.memory_cost},t={default.time_cost},p={default.parallelism}$"
    )


async def test_a_check_that_ends_in_an_error_counts_nothing_and_holds_no_slot() -> None:
    broken = Database("sqlite+aiosqlite:///:memory:", DatabaseSettings())
    await broken.stop()  # every transaction now raises
    service = make_service(broken, FakeClock(), CountingHasher(), account_free_failures=0)
    for _ in range(3):  # with no free failures one check at a time: a leaked slot would make the next a 429
        with pytest.raises(RuntimeError, match="stopped"):
            await service.verify_credentials("a@example.com", PASSWORD, client_ip="10.0.0.1")
