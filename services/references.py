"""Who owns an object of another capability, and what to call it, asked by its id alone.

Ids carry their kind as a prefix (``chs_…`` a chat session, ``run_…`` a run; see :func:`services.ids.new_id`).
A capability that stores a link to an object it does not own (a sandbox started for a chat session) asks
:meth:`References.ensure_owned` before storing it, without importing the capability that owns the object: that
capability registered a resolver for its prefix. An unknown prefix, a missing object and another user's object
all read the same: ``NotFoundError`` (404).

A seam that shows ids to people (the credits statement: what each charge paid for) asks :meth:`References.describe`
for their labels ("Chat: Trip to Rome"), one batch per prefix, from the describers the owning capabilities
registered. Ids nobody describes (unknown kinds, missing objects, another user's) simply get no label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlmodel import col, select

from services.db.database import Database
from services.errors import NotFoundError
from services.runs.models import Run

# (user_id, object_id) -> does that user own that object
OwnerCheck = Callable[[str, str], Awaitable[bool]]
# (user_id, object_ids) -> {object_id: label} for the ids that user owns; one query for the whole batch
Describer = Callable[[str, list[str]], Awaitable[dict[str, str]]]


def row_owner(db: Database, model: type[Any]) -> OwnerCheck:
    """The check for ids that are the primary keys of ``model``'s rows, each with a ``user_id``."""

    async def owns(user_id: str, object_id: str) -> bool:
        async with db.transaction(readonly=True) as session:
            row = await session.get(model, object_id)
        return row is not None and row.user_id == user_id

    return owns


def row_describer(db: Database, model: type[Any], label: Callable[[Any], str]) -> Describer:
    """Labels for ids that are the primary keys of ``model``'s rows (each with a ``user_id``): ``label(row)``."""

    async def describe(user_id: str, object_ids: list[str]) -> dict[str, str]:
        async with db.transaction(readonly=True) as session:
            rows = (
                await session.exec(select(model).where(col(model.id).in_(object_ids), model.user_id == user_id))
            ).all()
        return {row.id: label(row) for row in rows}

    return describe


def run_describer(db: Database, references: References) -> Describer:
    """Runs read as what they belong to (a chat turn as its chat, through the subject's own describer); a job (a
    run with no subject) as its kind; a run whose subject is gone as its kind, deleted."""

    async def describe(user_id: str, object_ids: list[str]) -> dict[str, str]:
        async with db.transaction(readonly=True) as session:
            rows = (await session.exec(select(Run).where(col(Run.id).in_(object_ids), Run.user_id == user_id))).all()
        subjects = await references.describe(user_id, [row.subject_id for row in rows if row.subject_id])
        return {
            row.id: subjects.get(row.subject_id) or f"{row.kind.replace('_', ' ').capitalize()} (deleted)"
            if row.subject_id else f"Job: {row.kind.replace('_', ' ')}"
            for row in rows
        }  # fmt: skip

    return describe


def _prefix(object_id: str) -> str | None:
    prefix, underscore, rest = object_id.partition("_")
    return prefix if underscore and rest else None


class References:
    def __init__(self) -> None:
        self._checks: dict[str, OwnerCheck] = {}
        self._describers: dict[str, Describer] = {}

    def register(self, prefix: str, owns: OwnerCheck | None = None, *, describe: Describer | None = None) -> None:
        """Answer for ids ``<prefix>_…``: whether a user owns one (``owns``: ids others may link to) and what to
        call it (``describe``). One registration per prefix; without ``owns`` no id of it can be linked to."""
        if not prefix.isalnum():
            raise ValueError(f"an id prefix is letters and digits, not {prefix!r}")
        if prefix in self._checks or prefix in self._describers:
            raise ValueError(f"ids {prefix}_… already have a resolver")
        if owns is None and describe is None:
            raise ValueError("register an owner check, a describer or both")
        if owns is not None:
            self._checks[prefix] = owns
        if describe is not None:
            self._describers[prefix] = describe

    def prefixes(self) -> list[str]:
        """The kinds of ids that can be linked to (those with an owner check)."""
        return sorted(self._checks)

    async def owns(self, user_id: str, object_id: str) -> bool:
        prefix = _prefix(object_id)
        check = self._checks.get(prefix) if prefix is not None else None
        if check is None:
            return False
        return await check(user_id, object_id)

    async def ensure_owned(self, user_id: str, object_id: str, *, what: str = "object") -> None:
        """Return if ``user_id`` owns ``object_id``; ``NotFoundError`` otherwise (unknown kinds included)."""
        if not await self.owns(user_id, object_id):
            raise NotFoundError(f"{what} not found")

    async def describe(self, user_id: str, object_ids: Iterable[str]) -> dict[str, str]:
        """Labels of the ids ``user_id`` owns, asked of each prefix's describer once; other ids are left out."""
        batches: dict[str, list[str]] = defaultdict(list)
        for object_id in dict.fromkeys(object_ids):
            prefix = _prefix(object_id)
            if prefix is not None and prefix in self._describers:
                batches[prefix].append(object_id)
        labels: dict[str, str] = {}
        for prefix, ids in batches.items():
            described = await self._describers[prefix](user_id, ids)
            labels.update({object_id: described[object_id] for object_id in ids if object_id in described})
        return labels
