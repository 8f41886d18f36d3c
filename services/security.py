"""The instance secret and what is derived from it (token digests, UI storage, later credential encryption), and the
private data dir it lives in (0700; the secret and the SQLite files 0600)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from pydantic import SecretStr

log = logging.getLogger(__name__)

SECRET_FILE_NAME = "secret_key"  # noqa: S105 (a file name)
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600


def make_private(path: Path, mode: int) -> None:
    """Take group and other permissions off ``path`` (an existing file or directory) when it has any; a shared
    folder (sticky, like /tmp) is left alone."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & 0o077:
        return
    if current & stat.S_ISVTX:
        log.warning("%s is a shared folder (mode %o): keep agent-ui's data in a folder of its own", path, current)
        return
    try:
        path.chmod(mode)
    except PermissionError:
        log.warning("%s is open to others (mode %o) and not ours to change", path, current)


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (0700), created with missing parents if need be."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    make_private(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner can read and write (0600), created empty if missing."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        make_private(path, PRIVATE_FILE)
    return path


def load_or_create_secret(configured: SecretStr | None, data_dir: Path) -> bytes:
    """The configured secret, else one generated on first start and kept (0600) in the data dir.

    Keeping it on disk means sessions and key digests survive restarts without configuration. Called first at
    start, so it also makes the data dir private (0700): the database, the secret and the files live there.
    """
    private_dir(data_dir)
    if configured is not None:
        given = configured.get_secret_value()
        if len(given) < 32:
            raise ValueError("AGENT_UI_SECRET_KEY must be at least 32 characters")
        return given.encode()
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        make_private(path, PRIVATE_FILE)
        return path.read_bytes().strip()
    # Written whole under another name, then linked in place: of two processes starting on a new data dir at once,
    # one link wins and the other reads the winner's secret, never a half-written file.
    value = secrets.token_urlsafe(48).encode()
    draft = data_dir / f".{SECRET_FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    try:
        os.link(draft, path)
    except FileExistsError:
        value = path.read_bytes().strip()
    finally:
        draft.unlink()
    return value


def derive_key(secret: bytes, purpose: str) -> bytes:
    """An independent key per purpose, so one use can never be replayed as another."""
    return hmac.new(secret, f"agent-ui:{purpose}".encode(), hashlib.sha256).digest()
