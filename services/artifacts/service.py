"""Artifacts: files a user's job made or a user uploaded, with a stable id, owner, media type, size and digest.

A new version of a file keeps its artifact id. An artifact is guarded by the scope of the run that made it
(an upload: by its capability's scope), deleted with its job or its owner, and its bytes never outlive its row
for long (a sweep removes bytes no row points to).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.artifacts.models import Artifact
from services.artifacts.schemas import ArtifactRead, Download
from services.artifacts.store import ArtifactStore
from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.clock import Clock, utcnow
from services.db.database import Database
from services.db.owned import get_owned
from services.errors import NotFoundError, ValidationFailedError
from services.ids import new_id
from services.periodic import Periodic
from services.runs import Run, RunService

log = logging.getLogger(__name__)
SWEEP_AFTER_S = 3600  # bytes written this long ago with no row are leftovers of a crash or a deletion
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_filename(name: str) -> str:
    cleaned = _UNSAFE.sub("_", Path(name).name).strip(" .") or "file"
    return cleaned[:255]


class ArtifactService:
    def __init__(self, *, db: Database, store: ArtifactStore, runs: RunService, clock: Clock = utcnow) -> None:
        self._db = db
        self._store = store
        self._runs = runs
        self._clock = clock
        self._sweeper = Periodic("artifact-sweeper", SWEEP_AFTER_S / 4, self.sweep)

    async def start(self) -> None:
        self._sweeper.start()

    async def stop(self) -> None:
        await self._sweeper.stop()

    async def save(
        self,
        *,
        user_id: str,
        kind: str,
        filename: str,
        media_type: str,
        data: bytes | Path,
        title: str | None = None,
        run_id: str | None = None,
        scope: Scope | None = None,
    ) -> ArtifactRead:
        """Store a new artifact. A job's artifact takes the scope of its run's kind; an upload names its own."""
        if run_id is not None:
            async with self._db.transaction(readonly=True) as session:
                run = await get_owned(session, Run, run_id, user_id, missing="run not found")
            kind_of_run = self._runs.kind(run.kind)
            scope = kind_of_run.scope if kind_of_run is not None else scope
        if scope is None:
            raise ValidationFailedError("an artifact needs the run that made it or a scope")
        stored = await self._store.put(data)
        now = self._clock()
        name = safe_filename(filename)
        row = Artifact(id=new_id("art"), user_id=user_id, run_id=run_id, scope=scope, kind=kind,
                       title=(title or name)[:200], filename=name, media_type=media_type, size=stored.size,
                       sha256=stored.sha256, storage_key=stored.key, created_at=now, updated_at=now)  # fmt: skip
        try:
            async with self._db.transaction() as session:
                session.add(row)
        except BaseException:
            await self._store.delete(stored.key)
            raise
        return ArtifactRead.model_validate(row)

    async def replace(
        self, user_id: str, artifact_id: str, data: bytes | Path, *, session: AsyncSession | None = None
    ) -> ArtifactRead:
        """A new version of the file under the same id; the old bytes go. With ``session`` the row changes in the
        caller's transaction (with what else must change with it) and the old bytes are left to the sweep, which
        also takes the new ones if that transaction rolls back."""
        stored = await self._store.put(data)
        if session is not None:
            row = await get_owned(session, Artifact, artifact_id, user_id, missing="artifact not found")
            row.storage_key, row.size, row.sha256 = stored.key, stored.size, stored.sha256
            row.version, row.updated_at = row.version + 1, self._clock()
            session.add(row)
            return ArtifactRead.model_validate(row)
        try:
            async with self._db.transaction() as session:
                row = await get_owned(session, Artifact, artifact_id, user_id, missing="artifact not found")
                old_key = row.storage_key
                row.storage_key, row.size, row.sha256 = stored.key, stored.size, stored.sha256
                row.version, row.updated_at = row.version + 1, self._clock()
                session.add(row)
        except BaseException:
            await self._store.delete(stored.key)
            raise
        await self._store.delete(old_key)
        return ArtifactRead.model_validate(row)

    async def _guarded(self, principal: Principal, artifact_id: str) -> Artifact:
        async with self._db.transaction(readonly=True) as session:
            row = await get_owned(session, Artifact, artifact_id, principal.user.id, missing="artifact not found")
        require_scope(principal, Scope(row.scope))
        return row

    async def get(self, principal: Principal, artifact_id: str) -> ArtifactRead:
        return ArtifactRead.model_validate(await self._guarded(principal, artifact_id))

    async def download(self, principal: Principal, artifact_id: str) -> Download:
        row = await self._guarded(principal, artifact_id)
        path = await self._store.local_path(row.storage_key)
        if not path.exists():
            raise NotFoundError("the artifact's file is gone")
        return Download(path=path, filename=row.filename, media_type=row.media_type, sha256=row.sha256)

    async def of_runs(self, user_id: str, run_ids: list[str]) -> dict[str, list[ArtifactRead]]:
        """The artifacts each of these runs made, oldest first (one query for a whole page of jobs)."""
        async with self._db.transaction(readonly=True) as session:
            statement = (
                select(Artifact)
                .where(Artifact.user_id == user_id, col(Artifact.run_id).in_(run_ids))
                .order_by(col(Artifact.created_at))
            )
            rows = (await session.exec(statement)).all()
        found: dict[str, list[ArtifactRead]] = {run_id: [] for run_id in run_ids}
        for row in rows:
            found[str(row.run_id)].append(ArtifactRead.model_validate(row))
        return found

    async def delete(self, principal: Principal, artifact_id: str) -> None:
        row = await self._guarded(principal, artifact_id)
        async with self._db.transaction() as session:
            found = await session.get(Artifact, row.id)
            if found is not None:
                await session.delete(found)
        await self._store.delete(row.storage_key)

    async def delete_of_run(self, user_id: str, run_id: str) -> None:
        """Every artifact a job made, with its bytes (before the job's row goes)."""
        async with self._db.transaction() as session:
            rows = list((await session.exec(
                select(Artifact).where(Artifact.user_id == user_id, Artifact.run_id == run_id)
            )).all())  # fmt: skip
            for row in rows:
                await session.delete(row)
        for row in rows:
            await self._store.delete(row.storage_key)

    async def sweep(self) -> int:
        """Remove bytes no row points to any more (their job or owner was deleted, or a save crashed)."""
        keys = await self._store.keys_older_than(SWEEP_AFTER_S)
        if not keys:
            return 0
        async with self._db.transaction(readonly=True) as session:
            statement = select(Artifact.storage_key).where(col(Artifact.storage_key).in_(keys))
            kept = set((await session.exec(statement)).all())
        orphans = [key for key in keys if key not in kept]
        for key in orphans:
            await self._store.delete(key)
        if orphans:
            log.info("removed %d artifact files no row points to", len(orphans))
        return len(orphans)
