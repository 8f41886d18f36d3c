"""Sign-in throttling: failed password checks counted per account and per client, with growing lockouts.

Checked *before* a password is looked at. The account is the normalised email whether a user has it or not, so a
throttled answer says nothing about which emails exist. After its free failures an account (or a client) is
locked out after each further failure, for ``lockout_base_s`` doubling up to ``lockout_max_s``; a successful
sign-in clears the account's count (never the client's). Running checks count too: past its free failures a key has
at most one check running, so concurrent guesses get no more tries than sequential ones.

:class:`MemoryLoginThrottle` keeps the counts in this process (each instance of a multi-instance deployment counts
on its own, and a restart forgets). A shared store (Redis) implements the same :class:`LoginThrottle` protocol.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from services.clock import Clock, utcnow
from services.errors import QuotaExceededError
from services.settings import LoginThrottleSettings


class LoginThrottledError(QuotaExceededError):
    """Too many failed sign-ins for this account or from this client (429); ``retry_after_s`` says when to retry."""

    code = "too_many_attempts"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many sign-in attempts; try again in {wait_text(retry_after_s)}",
            details={"retry_after_s": retry_after_s},
        )
        self.retry_after_s = retry_after_s


class Outcome(StrEnum):
    FAILED = "failed"  # wrong password or unknown email: counts against the account and the client
    SUCCEEDED = "succeeded"  # the password was right: the account's count is cleared
    ABANDONED = "abandoned"  # the check did not finish (an error, a cancel): nothing counts


class LoginThrottle(Protocol):
    """Every password check is bracketed by :meth:`admit` and :meth:`settle` with the same account and client."""

    async def admit(self, account: str, client: str) -> None:
        """Before the check: raises :class:`LoginThrottledError` while the account or the client is locked out,
        or already has a check running past its free failures; otherwise counts this check as running."""
        ...

    async def settle(self, account: str, client: str, outcome: Outcome) -> None:
        """After the check (also when it failed with an error): the check stops running and its outcome counts."""
        ...


def account_key(email: str) -> str:
    """The account a sign-in is for: the email as users are stored (trimmed, lower-case), known or not."""
    return email.strip().lower()[:320]


def client_key(address: str | None) -> str:
    """The client a sign-in comes from: its IP address, an IPv6 address by its /64 (one host holds a whole /64)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def wait_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass
class _Count:
    failures: int = 0
    running: int = 0
    locked_until: datetime | None = None
    last_failure: datetime | None = None

    def forgotten(self, now: datetime, forget_after: timedelta) -> bool:
        if self.running:
            return False
        last = max((t for t in (self.locked_until, self.last_failure) if t is not None), default=None)
        return last is None or now >= last + forget_after


class MemoryLoginThrottle:
    """:class:`LoginThrottle` in this process's memory, bounded to ``max_tracked`` keys (oldest idle ones go)."""

    def __init__(self, settings: LoginThrottleSettings, *, clock: Clock = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._forget_after = timedelta(seconds=settings.forget_after_s)
        self._counts: OrderedDict[str, _Count] = OrderedDict()

    def _keys(self, account: str, client: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return (
            (f"account:{account}", self._settings.account_free_failures),
            (f"client:{client}", self._settings.client_free_failures),
        )

    def _current(self, key: str, now: datetime) -> _Count | None:
        count = self._counts.get(key)
        if count is not None and count.forgotten(now, self._forget_after):
            del self._counts[key]
            return None
        return count

    async def admit(self, account: str, client: str) -> None:
        now = self._clock()
        wait = 0
        for key, free in self._keys(account, client):
            count = self._current(key, now)
            if count is None:
                continue
            if count.locked_until is not None and count.locked_until > now:
                wait = max(wait, math.ceil((count.locked_until - now).total_seconds()))
            elif count.running and count.failures + count.running > free:
                wait = max(wait, 1)  # one check at a time past the free failures: this one ends within a second
        if wait:
            raise LoginThrottledError(wait)
        for key, _free in self._keys(account, client):
            count = self._counts.setdefault(key, _Count())
            count.running += 1
            self._counts.move_to_end(key)
        self._evict()

    async def settle(self, account: str, client: str, outcome: Outcome) -> None:
        now = self._clock()
        for key, free in self._keys(account, client):
            count = self._counts.get(key)
            if count is None:
                continue
            count.running = max(0, count.running - 1)
            if outcome is Outcome.FAILED:
                count.failures += 1
                count.last_failure = now
                if count.failures > free:
                    count.locked_until = max(count.locked_until or now, now + self._lockout(count.failures - free - 1))
            elif outcome is Outcome.SUCCEEDED and key.startswith("account:"):
                count.failures, count.locked_until, count.last_failure = 0, None, None
            if count.forgotten(now, self._forget_after):
                del self._counts[key]

    def _lockout(self, beyond_free: int) -> timedelta:
        seconds = self._settings.lockout_base_s * 2.0 ** min(beyond_free, 64)
        return timedelta(seconds=min(seconds, self._settings.lockout_max_s))

    def _evict(self) -> None:
        while len(self._counts) > self._settings.max_tracked:
            idle = next((key for key, count in self._counts.items() if not count.running), None)
            if idle is None:
                return
            del self._counts[idle]
