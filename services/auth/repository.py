"""Queries for users, sessions, tickets and keys. Takes the caller's session; never commits."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.auth.models import ApiKey, AuthSession, LoginTicket, Role, User


async def user_by_id(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.exec(select(User).where(User.email == email))).first()


async def count_users(session: AsyncSession) -> int:
    return (await session.exec(select(sa.func.count()).select_from(User))).one()


async def count_active_admins(session: AsyncSession) -> int:
    statement = (
        select(sa.func.count()).select_from(User).where(User.role == Role.ADMIN, col(User.is_disabled).is_(False))
    )
    return (await session.exec(statement)).one()


async def session_with_user(session: AsyncSession, digest: str) -> tuple[AuthSession, User] | None:
    statement = select(AuthSession, User).join(User).where(AuthSession.token_digest == digest)
    row = (await session.exec(statement)).first()
    return None if row is None else (row[0], row[1])


async def api_key_with_user(session: AsyncSession, digest: str) -> tuple[ApiKey, User] | None:
    statement = select(ApiKey, User).join(User).where(ApiKey.api_key == digest)
    row = (await session.exec(statement)).first()
    return None if row is None else (row[0], row[1])


async def owned_api_key(session: AsyncSession, user_id: str, key_id: str) -> ApiKey | None:
    statement = select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id, col(ApiKey.revoked_at).is_(None))
    return (await session.exec(statement)).first()


async def delete_sessions_of(session: AsyncSession, user_id: str) -> None:
    await session.exec(sa.delete(AuthSession).where(col(AuthSession.user_id) == user_id))


async def delete_session(session: AsyncSession, session_id: str) -> None:
    await session.exec(sa.delete(AuthSession).where(col(AuthSession.id) == session_id))


async def take_ticket(session: AsyncSession, digest: str, now: datetime) -> str | None:
    """Delete the ticket and return its user id, if it exists and is fresh: a ticket works once."""
    statement = (
        sa.delete(LoginTicket)
        .where(col(LoginTicket.digest) == digest)
        .returning(col(LoginTicket.user_id), col(LoginTicket.expires_at))
    )
    row = (await session.exec(statement)).first()
    if row is None or row.expires_at <= now:
        return None
    return row.user_id


async def purge_expired(session: AsyncSession, now: datetime) -> None:
    await session.exec(sa.delete(AuthSession).where(col(AuthSession.expires_at) <= now))
    await session.exec(sa.delete(LoginTicket).where(col(LoginTicket.expires_at) <= now))


async def touch_api_key(session: AsyncSession, key_id: str, now: datetime, stale_before: datetime) -> None:
    """Record use, at most once per interval, without a read-modify-write race."""
    statement = (
        sa.update(ApiKey)
        .where(
            col(ApiKey.id) == key_id,
            sa.or_(col(ApiKey.last_used_at).is_(None), col(ApiKey.last_used_at) < stale_before),
        )
        .values(last_used_at=now)
    )
    await session.exec(statement)
