"""Cursor pagination, newest first, keyed on (created_at, id) so pages never skip or repeat rows."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.errors import ValidationFailedError

T = TypeVar("T")
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(row_id)
    except (ValueError, TypeError) as exc:
        raise ValidationFailedError("invalid cursor", code="invalid_cursor") from exc


async def keyset_page(
    session: AsyncSession,
    statement: Any,
    *,
    created_at: Any,
    row_id: Any,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """Run ``statement`` (one entity selected) for one page; returns the rows and the next cursor."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    if cursor:
        after_created, after_id = decode_cursor(cursor)
        statement = statement.where(
            sa.or_(created_at < after_created, sa.and_(created_at == after_created, row_id < after_id))
        )
    statement = statement.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)
    rows = list((await session.exec(statement)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(getattr(last, created_at.key), getattr(last, row_id.key))
