"""Prose: an article, a summary, an email or a story streamed as it is written (a run of kind ``prose``, followed,
resumed from ``Last-Event-ID`` and stopped like a chat turn), grounded in the user's resources with ``[n]``
citations when given, and saved as a markdown artifact (what was written so far, when stopped).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from sqlmodel import col, select

from services.artifacts import ArtifactRead, ArtifactService
from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.db.database import Database
from services.errors import DomainError
from services.generation.schemas import ProseRequest
from services.llm import ModelRegistry, TextDelta
from services.llm.metered import CallStoppedError, CallUsage, ModelCalls, Payer
from services.money import to_credits
from services.runs import Run, RunHandle, RunKind, RunService, RunStatus
from services.sources import SourcePassage, Sources

log = logging.getLogger(__name__)

KIND = "prose"
SOURCE_CHARS = 6_000
WORDS = {"short": 150, "medium": 400, "long": 900}
STYLES = {
    "article": "an article with a title (a markdown # heading), an introduction, a few sections with ## headings and "
    "a conclusion",
    "summary": "a summary: a title (a markdown # heading), then the key points in short paragraphs or a list",
    "email": "an email: a subject line (\"Subject: ...\"), a greeting, the message in short paragraphs and a sign-off",
    "story": "a short story with a title (a markdown # heading), told in vivid prose",
}


class ProseService:
    def __init__(
        self,
        *,
        db: Database,
        runs: RunService,
        artifacts: ArtifactService,
        calls: ModelCalls,
        models: ModelRegistry,
        sources: Sources,
    ) -> None:
        self._db = db
        self._runs = runs
        self._artifacts = artifacts
        self._calls = calls
        self._models = models
        self._sources = sources

    def run_kind(self) -> RunKind:
        return RunKind(name=KIND, scope=Scope.GENERATION)

    async def start(self, principal: Principal, request: ProseRequest) -> str:
        """Check and pay for the start before anything streams (404/409 for resources, 402 for credits: JSON errors,
        not a stream), then write in the background; the caller follows the run."""
        require_scope(principal, Scope.GENERATION)
        user_id = principal.user.id
        model = self._models.resolve(request.model)
        passages: list[SourcePassage] = []
        if request.rag_resource_ids:
            passages = await self._sources.passages(principal, request.rag_resource_ids, query=request.prompt,
                                                    max_chars=SOURCE_CHARS)  # fmt: skip
        messages = _prompt(request, passages)
        params = request.model_dump(mode="json", exclude_none=True)
        async with self._db.transaction() as session:
            run = self._runs.new_run(user_id=user_id, kind=KIND, params=params)
            session.add(run)
            await session.flush()
            hold = await self._calls.hold_for_call(user_id, model, messages, cause_id=run.id, session=session)
        handle = self._runs.open(run)
        handle.emit("run", {"run_id": run.id, "model": model.id})
        for n, passage in enumerate(passages, 1):
            handle.emit("citation", {"n": n, "resource_id": passage.resource_id, "chunk_id": passage.chunk_id,
                                     "title": passage.title, "position": {"page": passage.page,
                                                                          "heading": passage.heading},
                                     "snippet": passage.text[:240], "score": None})  # fmt: skip

        async def write(run: RunHandle) -> None:
            started = time.monotonic()
            text: list[str] = []

            def on_delta(delta: TextDelta) -> None:
                text.append(delta.text)
                run.emit("content.delta", {"text": delta.text})

            usage: CallUsage | None = None
            reason = "stop"
            try:
                result, usage = await self._calls.stream(Payer(user_id=user_id, run=run), model, messages,
                                                         on_delta=on_delta, hold=hold)  # fmt: skip
                reason = result.finish_reason or "stop"
            except CallStoppedError as stopped:
                usage, reason = stopped.usage, "cancelled"
            except DomainError as exc:
                run.emit("error", {"code": exc.code, "message": exc.message})
                await run.finish(RunStatus.FAILED, exc.code, error_message=exc.message)
                return
            written = "".join(text).strip()
            artifact = await self._save(user_id, run, request, written) if written else None
            _total(run, usage)
            run.emit("done", {"finish_reason": reason, "elapsed_ms": round((time.monotonic() - started) * 1000)})
            result_data: dict[str, Any] = {"artifact_id": artifact.id if artifact else None,
                                           "title": artifact.title if artifact else None,
                                           "words": word_count(written), "finish_reason": reason}  # fmt: skip
            status = RunStatus.CANCELLED if reason == "cancelled" else RunStatus.DONE
            await run.finish(status, "cancelled" if reason == "cancelled" else None, result=result_data)

        self._runs.launch(handle, write)
        return run.id

    async def _save(self, user_id: str, run: RunHandle, request: ProseRequest, text: str) -> ArtifactRead:
        title = request.title or _title_of(text) or request.prompt[:80]
        saved = await self._artifacts.save(user_id=user_id, kind="prose", filename=f"{_slug(title)}.md",
                                           media_type="text/markdown; charset=utf-8", data=text.encode() + b"\n",
                                           title=title, run_id=run.run_id)  # fmt: skip
        run.emit("artifact", {"kind": "prose", "id": saved.id, "url": saved.url, "title": saved.title})
        return saved

    async def recent(self, principal: Principal, limit: int = 20) -> list[Run]:
        """The user's latest prose runs (the page lists them with their artifacts)."""
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            return list((await session.exec(
                select(Run).where(Run.user_id == principal.user.id, Run.kind == KIND)
                .order_by(col(Run.created_at).desc()).limit(limit)
            )).all())  # fmt: skip


def _prompt(request: ProseRequest, passages: list[SourcePassage]) -> list[dict[str, Any]]:
    words = WORDS[request.length]
    cite = ""
    material = ""
    if passages:
        material = "Sources:\n" + "\n".join(f"[{n}] ({p.title}) {p.text}" for n, p in enumerate(passages, 1)) + "\n\n"
        cite = " Use only facts from the sources and cite each with its number in brackets, like [1]."
    title = f" Its title: {request.title}." if request.title else ""
    return [
        {"role": "system", "content": f"You are a skilled writer. Write {STYLES[request.style]}, about {words} "
         f"words, in markdown.{cite} Write only the text itself, no remarks about it."},
        {"role": "user", "content": f"{material}{request.prompt}{title}"},
    ]  # fmt: skip


def _total(run: RunHandle, usage: CallUsage | None) -> None:
    if usage is None:
        return
    run.emit("usage", {"scope": "total", "prompt_tokens": usage.prompt_tokens,
                       "completion_tokens": usage.completion_tokens,
                       "credits": float(to_credits(usage.credits_micro)),
                       "balance": float(to_credits(usage.balance_micro))})  # fmt: skip


_CITATION = re.compile(r"\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\]")


def word_count(text: str) -> int:
    """Words as a reader counts them: markdown marks (``#``, ``-``, ``**``) and citation markers are not words."""
    return sum(1 for token in _CITATION.sub(" ", text).split() if any(c.isalnum() for c in token))


def _title_of(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#") or line.lower().startswith("subject:"):
            return re.sub(r"^(#+|subject:)\s*", "", line, flags=re.IGNORECASE)[:200] or None
        if line:
            return None
    return None


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "text"
