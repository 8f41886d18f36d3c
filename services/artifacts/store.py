"""Where artifact bytes live. The disk store keeps them under the data dir; a store shared by several
instances (S3, a network disk) can take its place behind the same protocol."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.ids import new_id


@dataclass(frozen=True)
class Stored:
    key: str
    size: int
    sha256: str


class ArtifactStore(Protocol):
    """Bytes by key. Keys are made by the store; ``put`` never overwrites (a new version gets a new key)."""

    async def put(self, data: bytes | Path) -> Stored:
        """Store bytes (or a file's, which is copied), returning the new key, size and digest."""
        ...

    async def local_path(self, key: str) -> Path:
        """A local file with the bytes, for serving with Range (a remote store would fetch it to a cache)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the bytes; a missing key is fine."""
        ...

    async def keys_older_than(self, seconds: float) -> list[str]:
        """Keys written more than ``seconds`` ago (for sweeping bytes no row points to)."""
        ...


class DiskArtifactStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        if not key.replace("_", "").replace("/", "").isalnum() or ".." in key:
            raise ValueError("bad artifact key")
        return self._root / key

    async def put(self, data: bytes | Path) -> Stored:
        key = f"{time.strftime('%Y%m')}/{new_id('blob')}"
        return await asyncio.to_thread(self._write, key, data)

    def _write(self, key: str, data: bytes | Path) -> Stored:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        digest, size = hashlib.sha256(), 0
        with partial.open("wb") as out:
            for chunk in _chunks(data):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        partial.rename(target)
        return Stored(key, size, digest.hexdigest())

    async def local_path(self, key: str) -> Path:
        return self._path(key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def keys_older_than(self, seconds: float) -> list[str]:
        def scan() -> list[str]:
            if not self._root.exists():
                return []
            cutoff = time.time() - seconds
            found = [path for path in self._root.glob("*/*") if path.is_file() and not path.name.endswith(".partial")]
            return [str(path.relative_to(self._root)) for path in found if path.stat().st_mtime < cutoff]

        return await asyncio.to_thread(scan)


def _chunks(data: bytes | Path, size: int = 1 << 20) -> Iterator[bytes]:
    if isinstance(data, bytes):
        yield data
        return
    with data.open("rb") as source:
        while chunk := source.read(size):
            yield chunk
