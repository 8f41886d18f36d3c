"""Bearer secrets: how they are minted and how they are stored (a keyed digest, never the token)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "sk_"
# What is kept and shown of a key: "sk_" and the first 8 secret characters.
API_KEY_DISPLAY_LENGTH = len(API_KEY_PREFIX) + 8


class TokenDigester:
    """HMAC-SHA256 under the instance key: a stolen database alone cannot check guesses offline."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)
