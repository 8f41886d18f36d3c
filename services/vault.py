"""Credentials at rest: sealed with a key derived from the instance secret, opened only where they are used.

A sealed value is a small JSON object ``{"sealed": "v1", "key": <key id>, "token": <Fernet token>}`` (Fernet:
AES-128-CBC with an HMAC-SHA256, from ``cryptography``), so a JSON column stays JSON and a row says which key
sealed it. Rotating the instance secret keeps the old one readable: give it in ``previous_secret_keys``; values
sealed with it open and are sealed again with the current key (``rotated``) the next time they are written.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from services.security import derive_key

SEAL_VERSION = "v1"
PURPOSE = "credentials-v1"


class VaultError(Exception):
    """A sealed value that no known key opens (a lost secret or a damaged row)."""


def _fernet_key(secret: bytes) -> bytes:
    return base64.urlsafe_b64encode(derive_key(secret, PURPOSE))


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


class Vault:
    def __init__(self, secret: bytes, previous: list[bytes] | None = None) -> None:
        keys = [_fernet_key(secret), *(_fernet_key(old) for old in previous or [])]
        self._current = _key_id(keys[0])
        self._keys = {_key_id(key): Fernet(key) for key in reversed(keys)}  # the current one wins a clash

    def seal(self, value: Any) -> dict[str, str]:
        """Any JSON value, sealed."""
        plain = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        token = self._keys[self._current].encrypt(plain).decode()
        return {"sealed": SEAL_VERSION, "key": self._current, "token": token}

    def open(self, sealed: Any) -> Any:
        if not is_sealed(sealed):
            raise VaultError("not a sealed value")
        fernet = self._keys.get(sealed["key"])
        if fernet is None:
            raise VaultError("sealed with a key this instance does not have (was the secret key changed?)")
        try:
            return json.loads(fernet.decrypt(sealed["token"].encode()))
        except (InvalidToken, ValueError) as exc:
            raise VaultError("the sealed value is damaged") from exc

    def rotated(self, sealed: dict[str, str]) -> bool:
        """Whether a value was sealed with an older key (seal it again when it is next written)."""
        return sealed.get("key") != self._current


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("sealed") == SEAL_VERSION and {"key", "token"} <= value.keys()


def redact(secret: str) -> str:
    """What a user sees of a stored secret: its kind and its last four characters (``sk-...abcd``)."""
    if len(secret) < 12:
        return "…" if secret else ""
    kind = secret.split("-", 1)[0]
    head = f"{kind}-" if "-" in secret and len(kind) <= 3 else secret[:2]
    return f"{head}...{secret[-4:]}"
