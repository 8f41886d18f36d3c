"""AuthService against a real database: concurrency, tickets, expiry (time is injected, not waited for)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.auth import AuthService
from services.auth.cache import PrincipalCache
from services.auth.models import Role
from services.auth.repository import delete_sessions_of
from services.auth.schemas import RegisterRequest, UserAdminUpdate
from services.auth.tokens import TokenDigester
from services.db import Database
from services.errors import AuthenticationError, PermissionDeniedError
from services.settings import AuthSettings
from tests.conftest import cheap_passwords


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make_service(
    db: Database, clock: FakeClock, principals: PrincipalCache | None = None, **settings: object
) -> AuthService:
    return AuthService(
        db=db,
        digester=TokenDigester(b"k" * 32),
        principals=principals or PrincipalCache(0),
        settings=AuthSettings(**settings),
        passwords=cheap_passwords(),
        clock=clock,
    )


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_checked_session_is_trusted_for_the_cache_time_and_no_longer(db: Database) -> None:
    clock, monotonic = FakeClock(), FakeMonotonic()
    service = make_service(db, clock, PrincipalCache(2.0, monotonic=monotonic), session_ttl_hours=1)
    admin = await service.register(RegisterRequest(email="a@example.com", password="password-123"))
    token = await service.start_session(admin.id)
    assert (await service.authenticate(token)).user.id == admin.id
    async with db.transaction() as session:  # gone behind the service's back (another process did it)
        await delete_sessions_of(session, admin.id)
    monotonic.now += 1.9
    assert (await service.authenticate(token)).user.id == admin.id  # still trusted: no lookup yet
    monotonic.now += 0.2
    with pytest.raises(AuthenticationError):
        await service.authenticate(token)


async def test_changes_made_in_this_process_apply_at_once_despite_the_cache(db: Database) -> None:
    clock = FakeClock()
    service = make_service(db, clock, PrincipalCache(60.0), session_ttl_hours=1)
    admin = await service.register(RegisterRequest(email="a@example.com", password="password-123"))
    user = await service.register(RegisterRequest(email="b@example.com", password="password-123"))
    admin_principal = await service.authenticate(await service.start_session(admin.id))

    signed_out = await service.start_session(user.id)
    await service.authenticate(signed_out)
    await service.end_session(signed_out)
    with pytest.raises(AuthenticationError):
        await service.authenticate(signed_out)

    promoted = await service.start_session(user.id)
    assert (await service.authenticate(promoted)).user.role == "user"
    await service.update_user(admin_principal, user.id, UserAdminUpdate(role=Role.ADMIN))
    assert (await service.authenticate(promoted)).user.role == "admin"
    await service.update_user(admin_principal, user.id, UserAdminUpdate(disabled=True))
    with pytest.raises(AuthenticationError):
        await service.authenticate(promoted)

    expiring = await service.start_session(admin.id)
    await service.authenticate(expiring)
    clock.now += timedelta(hours=1, seconds=1)  # the session's own expiry beats the cache time
    with pytest.raises(AuthenticationError) as expired:
        await service.authenticate(expiring)
    assert expired.value.code == "session_expired"


async def test_concurrent_registrations_make_exactly_one_admin(db: Database) -> None:
    service = make_service(db, FakeClock())
    users = await asyncio.gather(
        *(service.register(RegisterRequest(email=f"u{i}@example.com", password="password-123")) for i in range(8))
    )
    assert sorted(user.role for user in users) == ["admin"] + ["user"] * 7


async def test_a_login_ticket_works_once_and_expires(db: Database) -> None:
    clock = FakeClock()
    service = make_service(db, clock, login_ticket_ttl_s=30)
    user = await service.register(RegisterRequest(email="a@example.com", password="password-123"))

    ticket = await service.issue_login_ticket(user.id)
    token = await service.redeem_login_ticket(ticket)
    assert (await service.authenticate(token)).user.id == user.id
    with pytest.raises(AuthenticationError):
        await service.redeem_login_ticket(ticket)

    late = await service.issue_login_ticket(user.id)
    clock.now += timedelta(seconds=31)
    with pytest.raises(AuthenticationError):
        await service.redeem_login_ticket(late)


async def test_sessions_expire_and_are_purged(db: Database) -> None:
    clock = FakeClock()
    service = make_service(db, clock, session_ttl_hours=1)
    user = await service.register(RegisterRequest(email="a@example.com", password="password-123"))
    token = await service.start_session(user.id)
    clock.now += timedelta(minutes=59)
    assert (await service.authenticate(token)).via == "session"
    clock.now += timedelta(minutes=2)
    with pytest.raises(AuthenticationError) as expired:
        await service.authenticate(token)
    assert expired.value.code == "session_expired"
    await service.purge_expired()
    with pytest.raises(AuthenticationError) as gone:
        await service.authenticate(token)
    assert gone.value.code == "invalid_session"


async def test_closed_registration_admits_only_the_first_user(db: Database) -> None:
    service = make_service(db, FakeClock(), allow_registration=False)
    first = await service.register(RegisterRequest(email="a@example.com", password="password-123"))
    assert first.role == "admin"
    with pytest.raises(Exception) as refused:
        await service.register(RegisterRequest(email="b@example.com", password="password-123"))
    assert getattr(refused.value, "code", None) == "registration_closed"


async def test_admin_methods_check_the_callers_role_and_scope_themselves(db: Database) -> None:
    service = make_service(db, FakeClock(), PrincipalCache(0), session_ttl_hours=1)
    admin = await service.register(RegisterRequest(email="a@example.com", password="password-123"))
    user = await service.register(RegisterRequest(email="b@example.com", password="password-123"))
    as_user = await service.authenticate(await service.start_session(user.id))
    as_admin = await service.authenticate(await service.start_session(admin.id))
    admin_key_without_admin_scope = replace(as_admin, scopes=["credits"])
    for caller in (as_user, admin_key_without_admin_scope):
        with pytest.raises(PermissionDeniedError):
            await service.update_user(caller, admin.id, UserAdminUpdate(disabled=True))
        with pytest.raises(PermissionDeniedError):
            await service.list_users(caller, limit=10, cursor=None)
    assert (await service.get_user(admin.id)).is_disabled is False
    assert len((await service.list_users(as_admin, limit=10, cursor=None)).items) == 2
