"""A user's resources for retrieval: ingestion as a job, the hybrid index, search, and the passage a citation opens.

Ingestion (kind ``rag_ingest``) reads the original (an upload kept as an artifact, a URL fetched now, pasted text),
extracts it in a worker thread, chunks it, embeds the chunks and writes everything in one transaction: a resource
is searchable entirely or not at all. Full text lives in the shared full-text table (scope ``rag``); vectors are
rows per (chunk, model), searched exactly in memory through a per-process cache that a per-user version counter in
the database invalidates, so another instance's change is seen at the next search.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.artifacts import ArtifactService
from services.auth.authz import require_scope
from services.auth.models import User
from services.auth.schemas import Principal, UserRead
from services.auth.scopes import Scope
from services.clock import Clock, utcnow
from services.credits import CreditService, Hold
from services.db.database import Database
from services.db.fulltext import FullTextIndex
from services.db.owned import get_owned
from services.errors import ConflictError, DomainError, NotFoundError, QuotaExceededError
from services.ids import new_id
from services.instances import LiveInstances
from services.jobs import JobContext, JobKind, JobService
from services.money import to_micro
from services.outbound import UrlFetcher
from services.rag.chunking import chunk
from services.rag.documents import HTML, PLAIN, ExtractedDocument, Section
from services.rag.embeddings import Embedder
from services.rag.errors import EmptyDocumentError
from services.rag.extract import detect_type, extract, extract_pasted
from services.rag.models import RagChunk, RagDocument, RagIndexVersion, RagResource, RagVector
from services.rag.schemas import (
    Passage,
    Position,
    ResourceCreate,
    ResourceRead,
    SearchHit,
    SearchRequest,
    SearchResults,
)
from services.rag.snippets import snippet
from services.rag.vectors import VectorIndex, reciprocal_rank_fusion, to_blob
from services.runs import TERMINAL, Run
from services.settings import CreditsSettings, RagSettings
from services.sources import SourcePassage

log = logging.getLogger(__name__)
INGEST_KIND = "rag_ingest"
FULLTEXT_SCOPE = "rag"
CANDIDATES = 50  # each ranking's depth before fusion


class IngestParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource_id: str = Field(min_length=1, max_length=32)


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    declared_type: str | None = None
    title: str | None = None


class VectorCache:
    """Each (user, model)'s vectors, least recently used dropped past a memory budget."""

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._entries: OrderedDict[tuple[str, str], VectorIndex] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def get(self, key: tuple[str, str], version: int) -> VectorIndex | None:
        found = self._entries.get(key)
        if found is None or found.version != version:
            return None
        self._entries.move_to_end(key)
        return found

    def of_user(self, user_id: str) -> list[tuple[tuple[str, str], VectorIndex]]:
        return [(key, index) for key, index in self._entries.items() if key[0] == user_id]

    def put(self, key: tuple[str, str], index: VectorIndex) -> None:
        self._entries[key] = index
        self._entries.move_to_end(key)
        while len(self._entries) > 1 and sum(i.nbytes for i in self._entries.values()) > self._budget:
            dropped, _ = self._entries.popitem(last=False)
            self._locks.pop(dropped, None)


class RagService:
    def __init__(
        self,
        *,
        db: Database,
        jobs: JobService,
        artifacts: ArtifactService,
        credits: CreditService,
        embedder: Embedder,
        fallback: Embedder | None,
        fetcher: UrlFetcher,
        settings: RagSettings,
        prices: CreditsSettings,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._artifacts = artifacts
        self._credits = credits
        # The configured embedder, and the bundled one to fall back on when an endpoint does not answer.
        self._embedders = [e for e in (embedder, fallback) if e is not None]
        self._fetcher = fetcher
        self._settings = settings
        self._prices = prices
        self._clock = clock
        self._fulltext = FullTextIndex(backend=db.backend, scope=FULLTEXT_SCOPE)
        self._cache = VectorCache(settings.index_cache_mb * 1024 * 1024)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def embedding_model(self) -> str:
        return self._embedders[0].name

    def job_kind(self) -> JobKind[IngestParams]:
        return JobKind(name=INGEST_KIND, scope=Scope.RAG, params=IngestParams, run=self._ingest, family="rag",
                       heavy=True, concurrency=1, on_ended=self._job_ended)  # fmt: skip

    # -- resources -------------------------------------------------------------------------------------

    async def upload(self, principal: Principal, upload: Upload) -> ResourceRead:
        """Keep the file as an artifact and ingest it in a job. 415 when the content is not a document we read."""
        require_scope(principal, Scope.RAG)
        media_type = await asyncio.to_thread(detect_type, upload.data, upload.filename, upload.declared_type)
        title = upload.title or _title_from_filename(upload.filename)
        return await self._create(principal, source="file", title=title, filename=upload.filename, url=None,
                                  media_type=media_type, data=upload.data)  # fmt: skip

    async def create(self, principal: Principal, request: ResourceCreate) -> ResourceRead:
        """Pasted text, or a URL (checked now: a private address is refused before anything is queued)."""
        require_scope(principal, Scope.RAG)
        if request.text is not None:
            title = request.title or _title_from_text(request.text)
            return await self._create(principal, source="text", title=title, filename=None, url=None,
                                      media_type=PLAIN, data=request.text.encode())  # fmt: skip
        url = str(request.url)
        await self._fetcher.check(url)
        return await self._create(principal, source="url", title=request.title or url[:200], filename=None,
                                  url=url, media_type=None, data=None)  # fmt: skip

    async def _create(self, principal: Principal, *, source: str, title: str, filename: str | None,
                      url: str | None, media_type: str | None, data: bytes | None) -> ResourceRead:  # fmt: skip
        user_id = principal.user.id
        async with self._db.transaction(readonly=True) as session:
            count = (await session.exec(
                select(sa.func.count()).select_from(RagResource).where(RagResource.user_id == user_id)
            )).one()  # fmt: skip
        if count >= self._settings.max_resources_per_user:
            raise QuotaExceededError(f"you have {count} resources, the most allowed; delete some first",
                                     code="resource_quota")  # fmt: skip
        artifact_id = None
        if data is not None:
            saved = await self._artifacts.save(user_id=user_id, kind="upload", filename=filename or "pasted.txt",
                                               media_type=media_type or PLAIN, data=data, title=title,
                                               scope=Scope.RAG)  # fmt: skip
            artifact_id = saved.id
        now = self._clock()
        resource = RagResource(id=new_id("rsc"), user_id=user_id, title=title[:200], source=source,
                               filename=filename, url=url, media_type=media_type, size=len(data or b""),
                               artifact_id=artifact_id, created_at=now, updated_at=now)  # fmt: skip
        async with self._db.transaction() as session:
            session.add(resource)
        return await self._start_ingest(principal, resource.id)

    async def _start_ingest(self, principal: Principal, resource_id: str) -> ResourceRead:
        try:
            job = await self._jobs.submit(principal, INGEST_KIND, IngestParams(resource_id=resource_id))
        except DomainError as exc:  # 429 or 402: the resource stays, failed, and can be ingested again later
            await self._fail(resource_id, exc.code, exc.message)
            raise
        async with self._db.transaction() as session:
            resource = await get_owned(session, RagResource, resource_id, principal.user.id, missing="gone")
            resource.job_id = job.id  # (the job may already have finished: its outcome is on the row already)
            session.add(resource)
        return await self.get(principal, resource_id)

    async def reingest(self, principal: Principal, resource_id: str) -> ResourceRead:
        """Ingest again from the original (after a failure, a cancel, or to re-embed): 409 while one runs."""
        require_scope(principal, Scope.RAG)
        async with self._db.transaction() as session:
            resource = await self._owned(session, principal.user.id, resource_id)
            if resource.status == "processing":
                raise ConflictError("the resource is being ingested already", code="resource_processing")
            resource.status, resource.error_code, resource.reason = "processing", None, None
            resource.job_id, resource.updated_at = None, self._clock()
            session.add(resource)
        return await self._start_ingest(principal, resource_id)

    async def list_resources(self, principal: Principal) -> list[ResourceRead]:
        require_scope(principal, Scope.RAG)
        async with self._db.transaction(readonly=True) as session:
            rows = (await session.exec(
                select(RagResource).where(RagResource.user_id == principal.user.id)
                .order_by(col(RagResource.created_at).desc(), col(RagResource.id).desc())
            )).all()  # fmt: skip
        return [ResourceRead.model_validate(row) for row in rows]

    async def get(self, principal: Principal, resource_id: str) -> ResourceRead:
        require_scope(principal, Scope.RAG)
        async with self._db.transaction(readonly=True) as session:
            return ResourceRead.model_validate(await self._owned(session, principal.user.id, resource_id))

    async def has_ready(self, user_id: str) -> bool:
        async with self._db.transaction(readonly=True) as session:
            found = (await session.exec(
                select(RagResource.id).where(RagResource.user_id == user_id, RagResource.status == "ready").limit(1)
            )).first()  # fmt: skip
        return found is not None

    async def delete(self, principal: Principal, resource_id: str) -> None:
        """Delete a resource with its chunks (gone from search at once), its original, and a job still going."""
        require_scope(principal, Scope.RAG)
        user_id = principal.user.id
        async with self._db.transaction() as session:
            resource = await self._owned(session, user_id, resource_id)
            job_id, artifact_id = resource.job_id, resource.artifact_id
            chunk_ids = await self._clear(session, resource_id)
            await session.delete(resource)
            version = await self._bump(session, user_id)
        self._in_background(self._advance_cache(user_id, version, remove_ids=chunk_ids))
        if job_id is not None:
            with contextlib.suppress(DomainError):  # it ended meanwhile, or was deleted
                await self._jobs.cancel(principal, job_id, family="rag")
        if artifact_id is not None:
            with contextlib.suppress(NotFoundError):
                await self._artifacts.delete(principal, artifact_id)

    async def _clear(self, session: AsyncSession, resource_id: str) -> list[str]:
        """Remove what a resource put in the index (words, vectors, chunks, text); returns the chunks removed."""
        chunk_ids = list((await session.exec(
            select(RagChunk.id).where(RagChunk.resource_id == resource_id)
        )).all())  # fmt: skip
        await self._fulltext.delete_group(session, resource_id)
        await session.exec(sa.delete(RagVector).where(
            col(RagVector.chunk_id).in_(select(RagChunk.id).where(RagChunk.resource_id == resource_id))
        ))  # fmt: skip
        await session.exec(sa.delete(RagChunk).where(col(RagChunk.resource_id) == resource_id))
        await session.exec(sa.delete(RagDocument).where(col(RagDocument.resource_id) == resource_id))
        return chunk_ids

    async def _owned(self, session: AsyncSession, user_id: str, resource_id: str) -> RagResource:
        return await get_owned(session, RagResource, resource_id, user_id, missing="resource not found")

    async def _fail(self, resource_id: str, code: str, reason: str) -> None:
        async with self._db.transaction() as session:
            resource = await session.get(RagResource, resource_id)
            if resource is not None and resource.status == "processing":
                resource.status, resource.error_code, resource.reason = "failed", code, reason[:1000]
                resource.updated_at = self._clock()
                session.add(resource)

    async def _job_ended(self, job_id: str, status: str, code: str | None, message: str | None) -> None:
        """An ingestion that did not finish (cancelled, failed, interrupted) leaves its resource ``failed`` with
        the job's reason; it can be ingested again."""
        async with self._db.transaction(readonly=True) as session:
            resource_id = (await session.exec(
                select(RagResource.id).where(RagResource.job_id == job_id, RagResource.status == "processing")
            )).first()  # fmt: skip
        if resource_id is None:  # the job ended before its id was recorded: found by the job's parameters
            async with self._db.transaction(readonly=True) as session:
                run = await session.get(Run, job_id)
            resource_id = str((run.params or {}).get("resource_id")) if run is not None else None
        if resource_id:
            reason = {"cancelled": "ingestion was cancelled"}.get(code or "", message or f"ingestion {status}")
            await self._fail(resource_id, code or status, reason)

    async def recover(self, _live: LiveInstances) -> int:
        """Resources still ``processing`` whose job ended without saying so (its instance died, or the server
        stopped while it waited) become ``failed`` with the job's reason; they can be ingested again."""
        async with self._db.transaction() as session:
            rows = (await session.exec(
                select(RagResource, Run).join(Run, col(Run.id) == col(RagResource.job_id))
                .where(RagResource.status == "processing", col(Run.status).in_(TERMINAL))
            )).all()  # fmt: skip
            for resource, run in rows:
                resource.status = "failed"
                resource.error_code = run.error_code or str(run.status)
                resource.reason = (run.error_message or f"the ingestion job ended ({run.status})")[:1000]
                resource.updated_at = self._clock()
                session.add(resource)
        return len(rows)

    async def reembed_stale(self, *, limit: int = 200) -> int:
        """Ingest again the ready resources whose vectors were made by another model than the configured one (the
        model was changed, or the endpoint was down and the bundled model stood in), each in its own job on behalf
        of its owner. Returns how many were queued."""
        async with self._db.transaction(readonly=True) as session:
            rows = (await session.exec(
                select(RagResource, User).join(User, col(User.id) == col(RagResource.user_id))
                .where(RagResource.status == "ready", col(RagResource.embedding_model) != self.embedding_model,
                       col(User.is_disabled).is_(False))
                .limit(limit)
            )).all()  # fmt: skip
        queued = 0
        for resource, user in rows:
            owner = Principal(user=UserRead.model_validate(user), via="session", credential_id="rag-reembed",
                              scopes=[Scope.RAG.value])  # fmt: skip
            try:
                await self.reingest(owner, resource.id)
                queued += 1
            except DomainError as exc:  # out of credits or jobs: it stays searchable by its words meanwhile
                log.info("re-embedding %s is not possible now: %s", resource.id, exc.message)
        return queued

    # -- ingestion (the job) ---------------------------------------------------------------------------

    async def _ingest(self, params: IngestParams, job: JobContext) -> dict[str, Any]:
        async with self._db.transaction(readonly=True) as session:
            resource = await session.get(RagResource, params.resource_id)
        if resource is None or resource.user_id != job.user_id:
            raise NotFoundError("the resource was deleted before it could be ingested", code="resource_deleted")
        hold: Hold | None = None
        holding: asyncio.Future[Hold] | None = None
        try:
            data, media_type = await self._original(resource, job)
            job.progress("extracting", 0, None, "reading the document")
            document = await self._extract(data, media_type, resource.source, job)
            overlap = min(self._settings.overlap_chars, self._settings.chunk_chars // 2)
            chunks = chunk(document, target_chars=self._settings.chunk_chars, overlap_chars=overlap)
            if not chunks:
                raise EmptyDocumentError("the document holds no text to index")
            texts = [piece.text for piece in chunks]
            embedder = self._embedders[0]
            tokens = embedder.estimate_tokens(texts)
            cost = to_micro(Decimal(str(self._prices.embedding_price_per_1k_tokens)) * tokens / 1000)
            # Made to the end even if the job is cancelled meanwhile: the hold is then released below, not lost.
            holding = asyncio.ensure_future(self._credits.hold(job.user_id, at_most=cost, cause_type="rag",
                                                               cause_id=resource.id))  # fmt: skip
            hold = await asyncio.shield(holding)
            vectors, embedder = await self._embed(texts, job)
            job.progress("indexing", len(chunks), len(chunks), "saving the index")
            async with self._db.transaction(exclusive=f"rag:{job.user_id}") as session:
                current = await session.get(RagResource, resource.id)
                if current is None:
                    raise NotFoundError("the resource was deleted while it was ingested", code="resource_deleted")
                version, added, removed = await self._write(session, current, document, chunks, vectors,
                                                            embedder.name)  # fmt: skip
                if hold is not None:
                    await self._credits.settle(hold, cost, session=session)
                    hold = None
            self._in_background(self._advance_cache(job.user_id, version, model=embedder.name, add_ids=added,
                                                    add_vectors=vectors, remove_ids=removed))  # fmt: skip
        except BaseException:  # the resource is marked failed by _job_ended, with the job's own reason
            if hold is None and holding is not None:  # cancelled while the hold was being made
                with contextlib.suppress(Exception):
                    hold = await holding
            if hold is not None:
                await asyncio.shield(self._credits.release(hold))
            raise
        return {"resource_id": resource.id, "chunks": len(chunks), "pages": document.pages, "tokens": tokens,
                "embedding_model": embedder.name}  # fmt: skip

    async def _original(self, resource: RagResource, job: JobContext) -> tuple[bytes, str | None]:
        if resource.source != "url":
            assert resource.artifact_id is not None
            download = await self._artifacts.download(job.principal, resource.artifact_id)
            return await asyncio.to_thread(download.path.read_bytes), resource.media_type
        assert resource.url is not None
        job.progress("fetching", message=f"fetching {resource.url}")
        fetched = await self._fetcher.fetch(resource.url, max_bytes=self._settings.max_upload_bytes)
        declared = (fetched.content_type or "").split(";")[0].strip() or None
        media_type = await asyncio.to_thread(detect_type, fetched.data, fetched.url.rsplit("/", 1)[-1], declared)
        saved = await self._artifacts.save(user_id=job.user_id, kind="upload", media_type=media_type,
                                           filename=_filename_of_url(fetched.url, media_type), data=fetched.data,
                                           title=resource.title, scope=Scope.RAG)  # fmt: skip
        async with self._db.transaction() as session:
            row = await session.get(RagResource, resource.id)
            if row is not None:
                old = row.artifact_id
                row.artifact_id, row.media_type, row.size = saved.id, media_type, len(fetched.data)
                session.add(row)
        if old := resource.artifact_id:  # a re-ingest fetched the page again: the older copy goes
            with contextlib.suppress(NotFoundError):
                await self._artifacts.delete(job.principal, old)
        return fetched.data, media_type

    async def _extract(self, data: bytes, media_type: str | None, source: str, job: JobContext) -> ExtractedDocument:
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:  # called in the worker thread
            loop.call_soon_threadsafe(job.progress, "extracting", done, total, None)

        if source == "text":
            return await asyncio.to_thread(extract_pasted, data.decode())
        return await asyncio.to_thread(extract, data, media_type or PLAIN, on_progress=progress)

    async def _embed(self, texts: list[str], job: JobContext) -> tuple[Any, Embedder]:
        """The chunks' vectors in batches (progress per batch; a cancel stops between them), by the configured
        embedder or, when it does not answer, the bundled one."""
        last: DomainError | None = None
        for embedder in self._embedders:
            size = getattr(embedder, "batch_size", 32)
            parts = []
            try:
                for start in range(0, len(texts), size):
                    job.progress("embedding", start, len(texts), f"embedding with {embedder.name}")
                    parts.append(await embedder.embed_passages(texts[start:start + size]))
            except DomainError as exc:
                log.warning("embedding with %s failed (%s); trying the next embedder", embedder.name, exc.message)
                last = exc
                continue
            job.progress("embedding", len(texts), len(texts), f"embedded with {embedder.name}")
            return np.concatenate(parts), embedder
        assert last is not None
        raise last

    async def _write(self, session: AsyncSession, resource: RagResource, document: ExtractedDocument,
                     chunks: list[Any], vectors: Any, model: str) -> tuple[int, list[str], list[str]]:  # fmt: skip
        """Replace whatever an earlier ingestion left with this one's chunks, vectors and text, and mark it ready.
        Returns the user's new index version, the chunks added and those removed."""
        removed = await self._clear(session, resource.id)
        await session.flush()
        rows = [
            RagChunk(id=new_id("chk"), resource_id=resource.id, user_id=resource.user_id, ordinal=piece.ordinal,
                     text=piece.text, start=piece.start, end=piece.end, prefix_chars=len(piece.prefix),
                     page=piece.page, heading=(piece.heading or None) and piece.heading[:500])
            for piece in chunks
        ]  # fmt: skip
        session.add(RagDocument(resource_id=resource.id, text=document.text,
                                sections=[_section_row(s) for s in document.sections]))  # fmt: skip
        session.add_all(rows)
        await session.flush()
        session.add_all([RagVector(chunk_id=row.id, model=model, user_id=resource.user_id, vector=to_blob(vector))
                         for row, vector in zip(rows, vectors, strict=True)])  # fmt: skip
        await self._fulltext.add_many(session, [(row.id, _indexed_text(row), resource.user_id, resource.id)
                                                for row in rows])  # fmt: skip
        resource.status, resource.error_code, resource.reason = "ready", None, None
        resource.pages, resource.chunk_count, resource.embedding_model = document.pages, len(rows), model
        if document.title and resource.source == "url" and resource.title == (resource.url or "")[:200]:
            resource.title = document.title[:200]
        resource.updated_at = self._clock()
        session.add(resource)
        return await self._bump(session, resource.user_id), [row.id for row in rows], removed

    async def _bump(self, session: AsyncSession, user_id: str) -> int:
        """Move the user's index version on; returns the new one."""
        dialect: Any = sqlite if self._db.backend == "sqlite" else postgresql
        table: Any = sa.inspect(RagIndexVersion).local_table
        insert = dialect.insert(table).values(user_id=user_id, version=1)
        upsert = insert.on_conflict_do_update(index_elements=["user_id"], set_={"version": table.c.version + 1})
        return int((await session.exec(upsert.returning(table.c.version))).scalar_one())

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Work after a commit that nothing waits for (nor cancels: the change is made whatever happens to it)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _advance_cache(self, user_id: str, version: int, *, model: str | None = None,
                             add_ids: Sequence[str] = (), add_vectors: Any = None,
                             remove_ids: Sequence[str] = ()) -> None:  # fmt: skip
        """This process's own change, applied to its cached vectors (when they were current just before it), so
        the next search needs no reload; another process's change is seen through the version instead."""
        for key, cached in self._cache.of_user(user_id):
            if cached.version != version - 1:
                continue
            adding = model is not None and key[1] == model
            change = functools.partial(cached.changed, add_ids=add_ids if adding else [], add_vectors=add_vectors,
                                       remove_ids=remove_ids, version=version)  # fmt: skip
            try:
                updated = await asyncio.to_thread(change)
            except ValueError:  # vectors of another shape: the next search reloads them from the database
                log.exception("could not update the cached vectors of %s", key)
                continue
            self._cache.put(key, updated)

    # -- search ------------------------------------------------------------------------------------------

    async def search(self, principal: Principal, request: SearchRequest) -> SearchResults:
        """The ``k`` best chunks of the user's ready resources (or of ``resource_ids``, 404 for any not theirs)."""
        require_scope(principal, Scope.RAG)
        user_id = principal.user.id
        depth = max(CANDIDATES, 4 * request.k)
        embedders = await self._embedders_in_use(user_id) if request.mode != "keyword" else []
        # The query's embedding is computed while the database answers (a worker thread, ~20 ms).
        queries = {e.name: asyncio.ensure_future(e.embed_query(request.query)) for e in embedders}
        try:
            return await self._search(user_id, request, depth, embedders, queries)
        finally:
            for pending in queries.values():
                pending.cancel()

    async def _search(self, user_id: str, request: SearchRequest, depth: int, embedders: list[Embedder],
                      queries: Mapping[str, asyncio.Future[Any]]) -> SearchResults:  # fmt: skip
        async with self._db.transaction(readonly=True) as session:
            groups = await self._chosen(session, user_id, request.resource_ids)
            keyword: list[str] = []
            if request.mode != "vector":
                hits = await self._fulltext.search(session, request.query, owner=user_id, limit=depth,
                                                   any_term=True, groups=groups)  # fmt: skip
                keyword = [hit.key for hit in hits]
                keyword_scores = {hit.key: hit.rank for hit in hits}
            version = (await session.exec(
                select(RagIndexVersion.version).where(RagIndexVersion.user_id == user_id)
            )).first() or 0  # fmt: skip
            allowed = None
            if groups is not None and request.mode != "keyword":
                allowed = list((await session.exec(
                    select(RagChunk.id).where(col(RagChunk.resource_id).in_(groups))
                )).all())  # fmt: skip
        rankings: list[list[str]] = [keyword] if request.mode != "vector" else []
        vector_scores: dict[str, float] = {}
        if request.mode != "keyword":
            for embedder in embedders:
                index = await self._vectors(user_id, embedder.name, version)
                if not len(index):
                    continue
                query = await queries[embedder.name]
                found = await asyncio.to_thread(index.search, query, depth, allowed)
                rankings.append([chunk_id for chunk_id, _ in found])
                vector_scores.update(found)
        scores: dict[str, float]
        if request.mode == "hybrid":
            fused = reciprocal_rank_fusion(rankings)
            order, scores = [chunk_id for chunk_id, _ in fused], dict(fused)
        elif request.mode == "keyword":
            order, scores = keyword, keyword_scores
        else:
            order = sorted(vector_scores, key=lambda chunk_id: -vector_scores[chunk_id])
            scores = vector_scores
        found_hits = await self._hits(user_id, order[:request.k + 5], scores, request.query)
        return SearchResults(query=request.query, mode=request.mode, hits=found_hits[:request.k],
                             embedding_model=self.embedding_model)  # fmt: skip

    async def _chosen(self, session: AsyncSession, user_id: str, resource_ids: list[str] | None) -> list[str] | None:
        if resource_ids is None:
            return None
        wanted = list(dict.fromkeys(resource_ids))
        found = set((await session.exec(
            select(RagResource.id).where(col(RagResource.id).in_(wanted), RagResource.user_id == user_id)
        )).all())  # fmt: skip
        if missing := [rid for rid in wanted if rid not in found]:
            raise NotFoundError(f"resource {missing[0]} not found", details={"missing": missing})
        return wanted

    async def _embedders_in_use(self, user_id: str) -> list[Embedder]:
        """The embedders whose model made some of this user's vectors (usually just the configured one)."""
        if len(self._embedders) == 1:
            return self._embedders
        async with self._db.transaction(readonly=True) as session:
            models = set((await session.exec(
                select(RagResource.embedding_model).where(RagResource.user_id == user_id).distinct()
            )).all())  # fmt: skip
        return [embedder for embedder in self._embedders if embedder.name in models] or self._embedders[:1]

    async def _vectors(self, user_id: str, model: str, version: int) -> VectorIndex:
        key = (user_id, model)
        if (cached := self._cache.get(key, version)) is not None:
            return cached
        async with self._cache.lock(key):
            if (cached := self._cache.get(key, version)) is not None:
                return cached
            async with self._db.transaction(readonly=True) as session:
                connection = await session.connection()
                rows = (await connection.execute(
                    sa.select(RagVector.chunk_id, RagVector.vector)  # type: ignore[call-overload]
                    .where(RagVector.user_id == user_id, RagVector.model == model)
                )).all()  # fmt: skip
            dim = len(rows[0][1]) // 4 if rows else 1  # as stored: an endpoint's dimension is known once it answered
            index = await asyncio.to_thread(VectorIndex.from_blobs, dim, [(r[0], r[1]) for r in rows],
                                            version=version)  # fmt: skip
            self._cache.put(key, index)
            return index

    async def _hits(self, user_id: str, order: list[str], scores: dict[str, float], query: str) -> list[SearchHit]:
        if not order:
            return []
        async with self._db.transaction(readonly=True) as session:
            rows = (await session.exec(
                select(RagChunk, RagResource.title).join(RagResource, col(RagResource.id) == col(RagChunk.resource_id))
                .where(col(RagChunk.id).in_(order), RagResource.status == "ready")
            )).all()  # fmt: skip
        # The owner is checked here, not in SQL: with it there, SQLite scans the user's chunks by user_id (50 ms at
        # 100k) instead of looking the ids up.
        by_id = {row.id: (row, title) for row, title in rows if row.user_id == user_id}
        hits = []
        for chunk_id in order:
            if (found := by_id.get(chunk_id)) is None:  # deleted since the ranking was made
                continue
            row, title = found
            shown, marks = snippet(row.text, query)
            hits.append(SearchHit(
                chunk_id=row.id, resource_id=row.resource_id, title=title,
                position=Position(page=row.page, heading=row.heading, start=row.start, end=row.end),
                snippet=shown, marks=marks, text=row.text, score=round(scores.get(chunk_id, 0.0), 6),
            ))  # fmt: skip
        return hits

    # -- passages for grounded generation (core.sources) -------------------------------------------------

    async def passages_for(
        self, principal: Principal, resource_ids: list[str], query: str | None, max_chars: int
    ) -> list[SourcePassage]:
        """Passages of these resources (each the user's and ready: 404 / 409 otherwise) up to ``max_chars``: the
        most relevant to ``query`` when there is one, else each document from its start, shared fairly."""
        require_scope(principal, Scope.RAG)
        user_id = principal.user.id
        wanted = list(dict.fromkeys(resource_ids))
        async with self._db.transaction(readonly=True) as session:
            resources = {row.id: row for row in (await session.exec(
                select(RagResource).where(col(RagResource.id).in_(wanted), RagResource.user_id == user_id)
            )).all()}  # fmt: skip
            if missing := [rid for rid in wanted if rid not in resources]:
                raise NotFoundError(f"resource {missing[0]} not found", details={"missing": missing})
            if unready := [rid for rid in wanted if resources[rid].status != "ready"]:
                raise ConflictError(f"resource {unready[0]} is not ready ({resources[unready[0]].status})",
                                    code="resource_not_ready")  # fmt: skip
            chunks: list[RagChunk] = []
            if max_chars <= 0:  # only the checks: a caller validating a request before queueing work
                return []
            if query is None:
                chunks = list((await session.exec(
                    select(RagChunk).where(col(RagChunk.resource_id).in_(wanted))
                    .order_by(col(RagChunk.resource_id), col(RagChunk.ordinal))
                )).all())  # fmt: skip
        if query is not None:
            found = await self.search(principal, SearchRequest(query=query, resource_ids=wanted, k=50))
            if not found.hits:  # nothing about the focus: the documents themselves, in order
                return await self.passages_for(principal, wanted, None, max_chars)
            picked: list[SourcePassage] = []
            used = 0
            for hit in found.hits:
                if used + len(hit.text) > max_chars and picked:
                    break
                where = hit.position
                picked.append(SourcePassage(resource_id=hit.resource_id, chunk_id=hit.chunk_id, title=hit.title,
                                            page=where.page, heading=where.heading, text=hit.text))  # fmt: skip
                used += len(hit.text)
            return picked
        per_resource: dict[str, list[RagChunk]] = {rid: [] for rid in wanted}
        for row in chunks:
            per_resource[row.resource_id].append(row)
        # Round robin: the first passage of each document, then the second of each, ... until the budget is spent.
        ordered: list[RagChunk] = []
        used = 0
        for layer in range(max((len(rows) for rows in per_resource.values()), default=0)):
            for rid in wanted:
                rows = per_resource[rid]
                if layer < len(rows) and used + len(rows[layer].text) <= max_chars:
                    ordered.append(rows[layer])
                    used += len(rows[layer].text)
        ordered.sort(key=lambda row: (wanted.index(row.resource_id), row.ordinal))
        return [SourcePassage(resource_id=row.resource_id, chunk_id=row.id, title=resources[row.resource_id].title,
                              page=row.page, heading=row.heading, text=row.text) for row in ordered]  # fmt: skip

    # -- what a citation opens --------------------------------------------------------------------------

    async def passage(self, principal: Principal, resource_id: str, chunk_id: str) -> Passage:
        """The page (PDF) or section holding a chunk, with the chunk's span in it."""
        require_scope(principal, Scope.RAG)
        user_id = principal.user.id
        async with self._db.transaction(readonly=True) as session:
            resource = await self._owned(session, user_id, resource_id)
            row = await session.get(RagChunk, chunk_id)
            if row is None or row.resource_id != resource_id:
                raise NotFoundError("passage not found")
            document = await session.get(RagDocument, resource_id)
        if document is None:
            raise NotFoundError("the resource has no text yet")
        start, end = _enclosing(document, row)
        return Passage(resource_id=resource_id, chunk_id=chunk_id, title=resource.title, page=row.page,
                       pages=resource.pages, heading=row.heading, text=document.text[start:end],
                       highlight=(max(0, row.start - start), min(end, row.end) - start))  # fmt: skip

    def describe(self) -> str:
        return f"embeddings: {self.embedding_model}"


def _enclosing(document: RagDocument, row: RagChunk) -> tuple[int, int]:
    """The page holding the chunk (PDF), else the text from its heading to the next heading of the same or a
    higher level (or ~3,000 characters around it when the document has no headings)."""
    sections = [Section(kind=s[0], start=s[1], end=s[2], page=s[3], heading=s[4], level=s[5])
                for s in document.sections]  # fmt: skip
    if row.page is not None:
        for section in sections:
            if section.kind == "page" and section.page == row.page:
                return section.start, section.end
    headings = [s for s in sections if s.kind == "heading"]
    # The chunk's own heading: the last one that starts before the chunk ends (a chunk may open with the
    # document's title and then its section's heading; the title's "section" would be the whole document).
    above = [h for h in headings if h.start < row.end]
    if above:
        heading = above[-1]
        level = heading.level if heading.level is not None else 0
        after = [h for h in headings if h.start > heading.start and (h.level if h.level is not None else 0) <= level]
        start = min(heading.start, row.start)
        end = max(after[0].start if after else len(document.text), row.end)
        if end - start <= 20_000:
            return start, end
    return max(0, row.start - 1500), min(len(document.text), row.end + 1500)


def _section_row(section: Section) -> list[Any]:
    return [section.kind, section.start, section.end, section.page, section.heading, section.level]


def _indexed_text(row: RagChunk) -> str:
    """A chunk's words as the full-text index holds them: its heading too, so a section's name finds it."""
    if row.heading and row.heading not in row.text[:len(row.heading) + 50]:
        return f"{row.heading}\n{row.text}"
    return row.text


def _title_from_filename(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return (stem or name or "Untitled").strip()[:200] or "Untitled"


def _title_from_text(text: str) -> str:
    first = next((line.strip().lstrip("#").strip() for line in text.splitlines() if line.strip()), "Pasted text")
    return first[:80] or "Pasted text"


def _filename_of_url(url: str, media_type: str) -> str:
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "page"
    if "." not in name:
        name += ".html" if media_type == HTML else ".txt" if media_type == PLAIN else ""
    return name

