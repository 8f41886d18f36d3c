"""Rows that belong to a user: one rule for every service."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from services.errors import NotFoundError

T = TypeVar("T")


async def get_owned(session: AsyncSession, model: type[T], row_id: Any, user_id: str, *, missing: str) -> T:
    """The row when it exists and is the user's; otherwise 404 with ``missing``. Another user's row reads
    exactly like a missing one, so ids never tell whether they exist."""
    row = await session.get(model, row_id)
    if row is None or getattr(row, "user_id", None) != user_id:
        raise NotFoundError(missing)
    return row
