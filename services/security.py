"""The instance secret and what is derived from it (token digests, UI storage, later credential encryption)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

SECRET_FILE_NAME = "secret_key"  # noqa: S105 (a file name)


def load_or_create_secret(configured: SecretStr | None, data_dir: Path) -> bytes:
    """The configured secret, else one generated on first start and kept (0600) in the data dir.

    Keeping it on disk means sessions and key digests survive restarts without configuration.
    """
    if configured is not None:
        given = configured.get_secret_value()
        if len(given) < 32:
            raise ValueError("AGENT_UI_SECRET_KEY must be at least 32 characters")
        return given.encode()
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value


def derive_key(secret: bytes, purpose: str) -> bytes:
    """An independent key per purpose, so one use can never be replayed as another."""
    return hmac.new(secret, f"agent-ui:{purpose}".encode(), hashlib.sha256).digest()
