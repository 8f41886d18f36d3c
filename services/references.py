"""Who owns an object of another capability, asked by its id alone.

Ids carry their kind as a prefix (``chs_…`` a chat session, ``run_…`` a run; see :func:`services.ids.new_id`).
A capability that stores a link to an object it does not own (a sandbox started for a chat session) asks
:meth:`References.ensure_owned` before storing it, without importing the capability that owns the object: that
capability registered a resolver for its prefix. An unknown prefix, a missing object and another user's object
all read the same: ``NotFoundError`` (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.db.database import Database
from services.errors import NotFoundError

# (user_id, object_id) -> does that user own that object
OwnerCheck = Callable[[str, str], Awaitable[bool]]


def row_owner(db: Database, model: type[Any]) -> OwnerCheck:
    """The check for ids that are the primary keys of ``model``'s rows, each with a ``user_id``."""

    async def owns(user_id: str, object_id: str) -> bool:
        async with db.transaction(readonly=True) as session:
            row = await session.get(model, object_id)
        return row is not None and row.user_id == user_id

    return owns


class References:
    def __init__(self) -> None:
        self._checks: dict[str, OwnerCheck] = {}

    def register(self, prefix: str, owns: OwnerCheck) -> None:
        """Answer for ids ``<prefix>_…``. One resolver per prefix."""
        if not prefix.isalnum():
            raise ValueError(f"an id prefix is letters and digits, not {prefix!r}")
        if prefix in self._checks:
            raise ValueError(f"ids {prefix}_… already have a resolver")
        self._checks[prefix] = owns

    def prefixes(self) -> list[str]:
        return sorted(self._checks)

    async def owns(self, user_id: str, object_id: str) -> bool:
        prefix, underscore, rest = object_id.partition("_")
        check = self._checks.get(prefix)
        if check is None or not underscore or not rest:
            return False
        return await check(user_id, object_id)

    async def ensure_owned(self, user_id: str, object_id: str, *, what: str = "object") -> None:
        """Return if ``user_id`` owns ``object_id``; ``NotFoundError`` otherwise (unknown kinds included)."""
        if not await self.owns(user_id, object_id):
            raise NotFoundError(f"{what} not found")
