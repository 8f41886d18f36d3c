"""Principals of recently seen tokens, kept for a moment.

A client's requests come in bursts, and each lookup of a token is a database round trip (about 3 ms on
SQLite here). Entries live ``ttl_s`` seconds at most and never past their credential's expiry. Anything
that signs out, revokes, deactivates, disables or changes a role in this process clears the cache at once;
other processes of the same deployment see such a change within ``ttl_s``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from services.auth.schemas import Principal

MAX_ENTRIES = 10_000


class PrincipalCache:
    def __init__(self, ttl_s: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, datetime | None, Principal]] = OrderedDict()

    def get(self, digest: str, now: datetime) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        fresh_until, expires_at, principal = entry
        if self._monotonic() >= fresh_until or (expires_at is not None and expires_at <= now):
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: str, principal: Principal, *, expires_at: datetime | None) -> None:
        if self._ttl_s <= 0:
            return
        self._entries[digest] = (self._monotonic() + self._ttl_s, expires_at, principal)
        self._entries.move_to_end(digest)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
