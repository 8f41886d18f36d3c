"""Who hears that a user's balance changed: listeners called after the change commits, in this process."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)
Listener = Callable[[str], None]
_PENDING = "credits.changed_users"


class BalanceWatchers:
    """Listeners per user (the header badge of each open page), called with the user id once a transaction that
    changed the user's balance or holds has committed; a rolled-back change is never announced.

    In-process only: with several instances behind a load balancer, a change made by one is not heard by pages
    served by another (they still show it on their next read). A shared bus (Redis pub/sub) is a later issue.
    Listeners run on the event loop inside the commit, so they must be quick and must not block: schedule work.
    """

    def __init__(self) -> None:
        self._listeners: defaultdict[str, set[Listener]] = defaultdict(set)

    def subscribe(self, user_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener(user_id)`` after each committed change; returns the function that unsubscribes."""
        self._listeners[user_id].add(listener)

        def unsubscribe() -> None:
            listeners = self._listeners.get(user_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[user_id]

        return unsubscribe

    def after_commit(self, session: AsyncSession, user_ids: Iterable[str]) -> None:
        """Announce ``user_ids`` once ``session``'s transaction commits (once per user however many changes)."""
        pending: set[str] | None = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = set()

            def committed(_session: Any) -> None:
                users = set(pending)
                pending.clear()
                self.notify(users)

            def rolled_back(_session: Any) -> None:
                pending.clear()

            sa.event.listen(session.sync_session, "after_commit", committed)
            sa.event.listen(session.sync_session, "after_rollback", rolled_back)
        pending.update(user_ids)

    def notify(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            for listener in list(self._listeners.get(user_id, ())):
                try:
                    listener(user_id)
                except Exception:  # one broken listener must not stop the others, nor fail a committed change
                    log.exception("balance listener failed")
