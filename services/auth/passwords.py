"""Argon2id password hashing, run off the event loop (each hash costs tens of milliseconds by design)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password. With no hash (unknown user) it still spends the time of one check."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash("timing-equaliser")
            password_hash = self._dummy_hash
            await asyncio.to_thread(self._safe_verify, password_hash, password)
            return False
        return await asyncio.to_thread(self._safe_verify, password_hash, password)

    def _safe_verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
