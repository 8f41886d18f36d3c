"""Decks: the model writes an outline and then each slide (JSON-schema constrained, so the local model too), the
slides are stored (each with a stable id, a position and a version per change) and rendered into a real .pptx with
python-pptx; slides are then added, edited, removed, reordered, rewritten by the model and restored to an earlier
version. After each change the .pptx artifact is rendered again (same id, a new version) and the thumbnails of the
slides that changed are made by LibreOffice in a background job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from collections.abc import Set as AbstractSet
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.artifacts import ArtifactRead, ArtifactService, Download
from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.clock import Clock, utcnow
from services.db.database import Database
from services.db.owned import get_owned
from services.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    QuotaExceededError,
    UnsupportedMediaTypeError,
    UpstreamUnavailableError,
    ValidationFailedError,
)
from services.generation import render, thumbnails
from services.generation.models import Deck, DeckSlide, DeckTemplate, SlideThumbnail, SlideVersion
from services.generation.schemas import (
    ChartData,
    DeckList,
    DeckRead,
    DeckRequest,
    DeckSpec,
    DeckSummary,
    Finite,
    Layout,
    RegenerateRequest,
    ReorderRequest,
    SlideCitation,
    SlideContent,
    SlideCreate,
    SlideEdit,
    SlideRead,
    SlideVersionList,
    SlideVersionRead,
    TableData,
    TemplateList,
    TemplateRead,
)
from services.ids import new_id
from services.jobs import JobContext, JobKind, JobRead, JobService
from services.llm import ModelInfo, ModelRegistry
from services.llm.metered import CallStoppedError, ModelCalls, Payer
from services.locks import KeyedLocks
from services.runs import Run, RunHandle, RunKind, RunService, RunStatus
from services.sources import SourcePassage, Sources

log = logging.getLogger(__name__)

KIND = "ppt"
THUMBNAILS_KIND = "slide_thumbnails"
REGENERATE_KIND = "slide_regenerate"
RETRY_UNDRAWABLE_S = 600.0  # a run (not a job): one slide rewritten while the client waits
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
API = "/api/v1/agent/slides"
SOURCE_CHARS = 5_000  # of passages or text given to the model per call (the local model's context is 8k tokens)
MAX_TEMPLATE_BYTES = 20 * 1024 * 1024
CONTENT_LAYOUTS = ("bullets", "two_columns", "table", "chart", "section")
# A small model at temperature 0 loops through the same bullet; the podcast measured 1.2 as enough.
FREQUENCY_PENALTY = 1.0


class ThumbnailParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deck_id: str = Field(min_length=1, max_length=32)


# -- what the model writes --------------------------------------------------------------------------------------

PlannedLayout = Literal["bullets", "two_columns", "table", "chart", "section"]
Label = Annotated[str, Field(min_length=1, max_length=40)]
_NUMBERS = re.compile(r"\d")
ChartKind = Literal["bar", "column", "line", "pie"]


def _outline_model(content_slides: int, *, figures: bool) -> type[BaseModel]:
    """The deck's plan: a title, a subtitle and exactly ``content_slides`` slides, each a title and a layout (a table
    or a chart only when the material has figures: asked for one from a topic alone, a small model fills its cells
    with the prompt's words and its chart with zeros)."""
    layout: Any = PlannedLayout if figures else Literal["bullets", "two_columns", "section"]
    planned = create_model(
        "PlannedSlide",
        __config__=ConfigDict(extra="forbid"),
        title=(str, Field(min_length=1, max_length=80)),
        layout=(layout, ...),
    )
    return create_model(
        "DeckOutline",
        __config__=ConfigDict(extra="forbid"),
        title=(str, Field(min_length=1, max_length=100)),
        subtitle=(str, Field(max_length=150)),
        slides=(list[planned], Field(min_length=content_slides, max_length=content_slides)),  # type: ignore[valid-type]
    )


def _slide_model(layout: str, sources: int) -> type[BaseModel]:
    """One slide's JSON for its layout, every list bounded so a slide stays readable (and a small model stops)."""
    cited: Any = (list[int], Field(default_factory=list, max_length=3) if sources else Field(max_length=0))
    common: dict[str, Any] = {"title": (str, Field(min_length=1, max_length=80)),
                              "notes": (str, Field(max_length=600)), "sources": cited}  # fmt: skip
    config = ConfigDict(extra="forbid")
    fields: dict[str, Any]
    if layout == "two_columns":
        fields = {"left": (list[str], Field(min_length=2, max_length=5)),
                  "right": (list[str], Field(min_length=2, max_length=5))}  # fmt: skip
    elif layout == "table":
        fields = {"columns": (list[str], Field(min_length=2, max_length=4)),
                  "rows": (list[list[str]], Field(min_length=2, max_length=6))}  # fmt: skip
    elif layout == "chart":
        series = create_model("Series", __config__=config, name=(Label, ...),
                              values=(list[Finite], Field(min_length=2, max_length=8)))  # fmt: skip
        fields = {"chart_type": (ChartKind, ...),
                  "categories": (list[Label], Field(min_length=2, max_length=8)),
                  "series": (list[series], Field(min_length=1, max_length=3))}  # type: ignore[valid-type]  # fmt: skip
    elif layout == "section":
        fields = {"subtitle": (str, Field(max_length=150))}
        common.pop("sources")
    else:
        fields = {"bullets": (list[str], Field(min_length=3, max_length=6))}
    return create_model(f"Slide_{layout}", __config__=config, **common, **fields)


def _content(layout: str, written: BaseModel, passages: list[SourcePassage], *,
             titles: Sequence[str] = ()) -> SlideContent:  # fmt: skip
    """What the model wrote, as a stored slide: lines trimmed, markup taken out, numbers of sources turned into
    citations; a bullet that only names a slide of the deck is dropped (a small model lists the plan)."""
    data = written.model_dump()
    numbers = sorted({n for n in data.get("sources", []) if 1 <= n <= len(passages)})
    numbers += [n for n in _cited_in(data) if n not in numbers and 1 <= n <= len(passages)]
    citations = [SlideCitation(**passages[n - 1].citation(n)) for n in sorted(numbers)]
    content: dict[str, Any] = {"layout": layout, "title": _clean(data["title"])[:200], "notes": data["notes"],
                               "citations": citations}  # fmt: skip
    skip = {title.casefold() for title in titles}
    if layout == "two_columns":
        content.update(bullets=_lines(data["left"], skip), right=_lines(data["right"], skip))
    elif layout == "table":
        rows = [[_clean(cell)[:120] for cell in row][:8] for row in data["rows"][:12]]
        content["table"] = TableData(columns=[_clean(c)[:120] for c in data["columns"]], rows=rows)
    elif layout == "chart":
        series = [{"name": _clean(s["name"])[:120], "values": s["values"]} for s in data["series"]]
        content["chart"] = ChartData(type=data["chart_type"], categories=[_clean(c)[:120] for c in data["categories"]],
                                     series=series)  # type: ignore[arg-type]  # fmt: skip
    elif layout == "section":
        content["subtitle"] = _clean(data.get("subtitle", ""))[:300] or None
    else:
        content["bullets"] = _lines(data["bullets"], skip)
    return SlideContent(**content)


def _balanced(planned: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A plan a deck can use: no two section dividers running and one per four slides at most (at least one
    allowed); the others become bullets (a small model makes every slide a divider)."""
    allowed = max(1, len(planned) // 4)
    kept: list[tuple[str, str]] = []
    for n, (title, layout) in enumerate(planned):
        if layout == "section":
            following = planned[n + 1][1] if n + 1 < len(planned) else None
            if following == "section" or allowed == 0:
                layout = "bullets"
            else:
                allowed -= 1
        kept.append((title, layout))
    return kept


def _empty(content: SlideContent) -> bool:
    """A slide with nothing to show: no lines, a table of blank cells, a chart of blank labels or equal values."""
    if content.layout in ("title", "section"):
        return False
    if content.layout == "table":
        return content.table is None or not any(cell for row in content.table.rows for cell in row)
    if content.layout == "chart":
        chart = content.chart
        values = {v for series in chart.series for v in series.values} if chart else set()
        return chart is None or not all(chart.categories) or len(values) < 2
    return not content.bullets


_MARKERS = re.compile(r"\s*\[(\d{1,2})\]")


def _cited_in(data: dict[str, Any]) -> list[int]:
    text = " ".join(str(v) for v in (data.get("bullets") or []) + (data.get("left") or []) + (data.get("right") or []))
    return [int(n) for n in _MARKERS.findall(text)]


_TAGS = re.compile(r"</?[a-zA-Z][^>]{0,40}>")


def _clean(text: str) -> str:
    """A line as shown: HTML and markdown marks and citation markers out (the notes carry the sources)."""
    text = _MARKERS.sub("", _TAGS.sub("", text))
    text = re.sub(r"^\s*(?:[-*•]+|\d+[.)])\s+", "", text)
    return " ".join(re.sub(r"[*_`#]+", "", text).split())


def _lines(lines: list[str], skip: AbstractSet[str] = frozenset()) -> list[str]:
    kept: list[str] = []
    for line in lines:
        cleaned = _clean(line)[:300]
        if cleaned and cleaned.casefold() not in skip and cleaned.casefold() not in {k.casefold() for k in kept}:
            kept.append(cleaned)
    return kept[:12]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "deck"


class DeckService:
    def __init__(
        self,
        *,
        db: Database,
        jobs: JobService,
        runs: RunService,
        artifacts: ArtifactService,
        calls: ModelCalls,
        models: ModelRegistry,
        sources: Sources,
        thumbnail_width: int = 640,
        thumbnail_timeout_s: float = 120.0,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._runs = runs
        self._artifacts = artifacts
        self._calls = calls
        self._models = models
        self._sources = sources
        self._clock = clock
        self._thumbnail_width = thumbnail_width
        self._thumbnail_timeout_s = thumbnail_timeout_s
        self._changes = KeyedLocks()  # one change of a deck's file at a time in this process
        self._thumbnailing: set[str] = set()  # decks with a thumbnail job waiting or running here
        # (slide id, version) LibreOffice could not draw, and when: not tried again for a while (a poll would
        # otherwise start a conversion that fails every two seconds, holding up everyone's thumbnails)
        self._undrawable: dict[tuple[str, int], float] = {}

    def job_kinds(self) -> list[JobKind[Any]]:
        return [
            JobKind(name=KIND, scope=Scope.GENERATION, params=DeckRequest, run=self._make, family="generation",
                    heavy=True, concurrency=1),
            JobKind(name=THUMBNAILS_KIND, scope=Scope.GENERATION, params=ThumbnailParams, run=self._thumbnail_job,
                    family="slides", heavy=False, concurrency=1, on_ended=self._thumbnails_ended),
        ]  # fmt: skip

    def regenerate_kind(self) -> RunKind:
        return RunKind(name=REGENERATE_KIND, scope=Scope.GENERATION)

    # -- submit -----------------------------------------------------------------------------------------------

    async def submit(self, principal: Principal, request: DeckRequest) -> JobRead:
        """Check what can be checked before queueing (the model, the template and resources are the user's and
        ready), then queue the job."""
        require_scope(principal, Scope.GENERATION)
        self._models.resolve(request.model)
        if request.template_id is not None:
            async with self._db.transaction(readonly=True) as session:
                await get_owned(session, DeckTemplate, request.template_id, principal.user.id,
                                missing="template not found")  # fmt: skip
        if request.rag_resource_ids:
            await self._sources.passages(principal, request.rag_resource_ids, max_chars=0)
        return await self._jobs.submit(principal, KIND, request.model_dump(exclude_none=True))

    # -- the job ----------------------------------------------------------------------------------------------

    async def _make(self, params: DeckRequest, job: JobContext) -> dict[str, Any]:
        model = self._models.resolve(params.model)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        passages = await self._passages(job.principal, params.rag_resource_ids, params.topic, job)
        template = await self._template_bytes(job.principal, params.template_id)
        with_title = params.slide_count >= 3
        content_count = params.slide_count - 1 if with_title else params.slide_count
        job.progress("outline", 0, 1, "planning the slides")
        figures = bool(_NUMBERS.search(self._material(None, params.text, passages)))
        outline = await job.calls.complete_json(job.payer, model,
                                                self._outline_prompt(params, passages, content_count, figures=figures),
                                                _outline_model(content_count, figures=figures))  # fmt: skip
        title = params.title or _clean(outline.title) or "Presentation"  # type: ignore[attr-defined]
        planned = _balanced([(_clean(s.title) or f"Slide {n}", s.layout)
                             for n, s in enumerate(outline.slides, 1)])  # type: ignore[attr-defined]  # fmt: skip
        job.progress("outline", 1, 1, title)
        timings["outline"] = round(time.perf_counter() - started, 3)

        slides: list[SlideContent] = []
        if with_title:
            subtitle = _clean(outline.subtitle) or None  # type: ignore[attr-defined]
            slides.append(SlideContent(layout="title", title=title, subtitle=subtitle,
                                       notes=f"{title}. {subtitle or ''}".strip()))  # fmt: skip
        job.progress("slides", len(slides), params.slide_count)
        for slide_title, layout in planned:
            messages = self._slide_prompt(params.topic, params.text, passages, title, [t for t, _ in planned],
                                          slide_title, layout)  # fmt: skip
            written = await job.calls.complete_json(job.payer, model, messages, _slide_model(layout, len(passages)),
                                                    frequency_penalty=FREQUENCY_PENALTY)  # fmt: skip
            content = _content(layout, written, passages, titles=[t for t, _ in planned])
            if _empty(content) and layout != "bullets":  # a table or chart of nothing: bullets say more
                messages = self._slide_prompt(params.topic, params.text, passages, title, [t for t, _ in planned],
                                              slide_title, "bullets")  # fmt: skip
                written = await job.calls.complete_json(job.payer, model, messages,
                                                        _slide_model("bullets", len(passages)),
                                                        frequency_penalty=FREQUENCY_PENALTY)  # fmt: skip
                content = _content("bullets", written, passages, titles=[t for t, _ in planned])
            # The plan's title: the slide's own call may retitle it (a small model, "Introduction" twice).
            slides.append(content.model_copy(update={"title": slide_title}))
            job.progress("slides", len(slides), params.slide_count, slide_title)
        timings["slides"] = round(time.perf_counter() - started - timings["outline"], 3)

        rendering_at = time.perf_counter()
        job.progress("rendering", 0, 1, "making the .pptx")
        spec = DeckSpec(title=title, slides=slides)
        data = await asyncio.to_thread(render.render_deck, spec, theme=params.theme, template=template)
        stored = asyncio.ensure_future(self._store(job, params, model, title, slides, passages, data))
        deck = await asyncio.shield(stored)  # stored whole even if the job is cancelled meanwhile
        job.progress("rendering", 1, 1, "saved")
        rendered_at = time.perf_counter()
        timings["rendering"] = round(rendered_at - rendering_at, 3)
        made = await self._thumbnails_in_job(job, deck.id)
        timings["thumbnails"] = round(time.perf_counter() - rendered_at, 3)
        return {"deck_id": deck.id, "artifact_id": deck.artifact_id, "title": title, "slides": len(slides),
                "thumbnails": made, "stage_s": timings}  # fmt: skip

    async def _thumbnails_in_job(self, job: JobContext, deck_id: str) -> int | str:
        """The new deck's thumbnails as the job's last stage; a deck without them is still a deck."""
        reason = thumbnails.available()
        if reason is not None:
            job.progress("thumbnails", 0, 0, reason)
            return f"unavailable: {reason}"
        job.progress("thumbnails", 0, 1, "drawing the slides")
        self._thumbnailing.add(deck_id)  # a look at the deck meanwhile waits for these instead of drawing them too
        try:
            made = await self._thumbnail_stale(job.principal, deck_id)
        except DomainError as exc:
            log.warning("thumbnails of deck %s failed: %s", deck_id, exc.message)
            return f"failed: {exc.message}"
        except Exception:
            log.exception("thumbnails of deck %s failed", deck_id)
            return "failed: see the log"
        finally:
            self._thumbnailing.discard(deck_id)
        if await self._stale(deck_id):  # changed while being drawn
            await self.ensure_thumbnails(job.principal, deck_id)
        job.progress("thumbnails", 1, 1, f"{made} slides drawn")
        return made

    async def _store(self, job: JobContext, params: DeckRequest, model: ModelInfo, title: str,
                     slides: list[SlideContent], passages: list[SourcePassage], data: bytes) -> Deck:  # fmt: skip
        artifact = await job.artifact(kind="pptx", filename=f"{_slug(title)}.pptx", media_type=PPTX, data=data,
                                      title=title)  # fmt: skip
        now = self._clock()
        deck = Deck(id=job.job_id, user_id=job.user_id, title=title[:200], theme=params.theme,
                    template_id=params.template_id, model=model.id, topic=(params.topic or "")[:2000],
                    sources=[p.citation(n) for n, p in enumerate(passages, 1)], artifact_id=artifact.id,
                    created_at=now, updated_at=now)  # fmt: skip
        async with self._db.transaction() as session:
            session.add(deck)
            await session.flush()
            for position, content in enumerate(slides):
                self._add_slide_row(session, deck, position, content, "generated")
        return deck

    def _add_slide_row(self, session: AsyncSession, deck: Deck, position: int, content: SlideContent,
                       cause: str) -> DeckSlide:  # fmt: skip
        now = self._clock()
        stored = content.model_dump(mode="json")
        row = DeckSlide(id=new_id("sld"), deck_id=deck.id, user_id=deck.user_id, position=position, version=1,
                        content=stored, updated_at=now)  # fmt: skip
        session.add(row)
        session.add(SlideVersion(slide_id=row.id, version=1, content=stored, cause=cause, created_at=now))
        return row

    async def _passages(self, principal: Principal, resource_ids: list[str] | None, query: str | None,
                        job: JobContext | None) -> list[SourcePassage]:  # fmt: skip
        if not resource_ids:
            return []
        if job is not None:
            job.progress("sources", 0, 1, "reading your resources")
        found = await self._sources.passages(principal, resource_ids, query=query, max_chars=SOURCE_CHARS)
        if job is not None:
            job.progress("sources", 1, 1, f"{len(found)} passages")
        return found

    async def _template_bytes(self, principal: Principal, template_id: str | None) -> bytes | None:
        if template_id is None:
            return None
        async with self._db.transaction(readonly=True) as session:
            template = await get_owned(session, DeckTemplate, template_id, principal.user.id,
                                       missing="template not found")  # fmt: skip
        download = await self._artifacts.download(principal, template.artifact_id)
        return await asyncio.to_thread(download.path.read_bytes)

    # -- prompts ----------------------------------------------------------------------------------------------

    def _material(self, topic: str | None, text: str | None, passages: list[SourcePassage]) -> str:
        parts = []
        if topic:
            parts.append(f"Topic: {topic}")
        if text:
            parts.append("Material:\n" + text[:SOURCE_CHARS])
        if passages:
            parts.append("Sources:\n" + "\n".join(f"[{n}] ({p.title}) {p.text}" for n, p in enumerate(passages, 1)))
        return "\n\n".join(parts)

    def _outline_prompt(self, params: DeckRequest, passages: list[SourcePassage], count: int, *,
                        figures: bool) -> list[dict[str, Any]]:  # fmt: skip
        # The layouts are explained in the system message, apart from the ask: a small model copies words near the
        # ask into its titles ("Facts in rows").
        shown = " A table lists figures of the material in rows; a chart draws them." if figures else ""
        return [
            {"role": "system", "content": "You plan presentation decks. Each slide has a title about its own part of "
             "the topic and a layout. Most slides use the bullets layout; two_columns compares two things; section "
             f"starts a new part (at most one in four slides).{shown} Reply with JSON only."},
            {"role": "user", "content": f"{self._material(params.topic, params.text, passages)}\n\nPlan a "
             f"presentation about this: a short title, a one-line subtitle and exactly {count} slides. Each slide "
             "title names what that slide is about; no two slides alike."},
        ]  # fmt: skip

    def _slide_prompt(self, topic: str | None, text: str | None, passages: list[SourcePassage], deck_title: str,
                      titles: list[str], slide_title: str, layout: str,
                      current: SlideContent | None = None,
                      instructions: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        shape = {
            "bullets": "3 to 6 short bullets",
            "two_columns": "two columns of 2 to 5 short bullets each, side by side (left and right)",
            "table": "a small table: 2 to 4 column headings and 2 to 6 rows of short cells",
            "chart": "a chart: its type, 2 to 8 category labels and 1 to 3 series of numbers, one per category",
            "section": "a section divider: the title and a one-line subtitle",
        }[layout]
        cite = " Put the numbers of the sources a slide uses in its sources." if passages else ""
        others = [title for title in titles if title != slide_title]
        ask = (f"Deck: {deck_title}." + (f" Other slides cover: {'; '.join(others)}." if others else "")
               + f"\n\nWrite the slide \"{slide_title}\" as {shape} about {slide_title}, with speaker notes of two or "
               "three sentences.")
        if current is not None:
            ask += f"\n\nThe slide now reads: {current.model_dump_json(include={'title', 'bullets', 'right', 'notes'})}"
            ask += f"\n\nWrite it anew. {instructions}" if instructions else "\n\nWrite it anew, better."
        return [
            {"role": "system", "content": "You write presentation slides: short lines without markdown, no full "
             f"sentences in bullets, no repeated bullets, facts only from the material given.{cite} Reply with "
             "JSON only."},
            {"role": "user", "content": f"{self._material(topic, text, passages)}\n\n{ask}"},
        ]  # fmt: skip

    # -- reading ----------------------------------------------------------------------------------------------

    async def list_decks(self, principal: Principal) -> DeckList:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            decks = (await session.exec(select(Deck).where(Deck.user_id == principal.user.id)
                                        .order_by(col(Deck.created_at).desc()))).all()  # fmt: skip
            counts = dict((await session.exec(
                select(DeckSlide.deck_id, sa.func.count()).where(DeckSlide.user_id == principal.user.id)
                .group_by(DeckSlide.deck_id)
            )).all())  # fmt: skip
        return DeckList(items=[_summary(deck, counts.get(deck.id, 0)) for deck in decks])

    async def get(self, principal: Principal, deck_id: str) -> DeckRead:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            slides = await self._slides(session, deck_id)
            ready = await self._thumbnails_ready(session, slides)
        pptx = await self._artifacts.get(principal, deck.artifact_id)
        return _deck_read(deck, slides, ready, pptx)

    async def _slides(self, session: AsyncSession, deck_id: str) -> list[DeckSlide]:
        return list((await session.exec(select(DeckSlide).where(DeckSlide.deck_id == deck_id)
                                        .order_by(col(DeckSlide.position)))).all())  # fmt: skip

    async def _thumbnails_ready(self, session: AsyncSession, slides: list[DeckSlide]) -> set[tuple[str, int]]:
        if not slides:
            return set()
        rows = (await session.exec(select(SlideThumbnail.slide_id, SlideThumbnail.version)
                                   .where(col(SlideThumbnail.slide_id).in_([s.id for s in slides])))).all()  # fmt: skip
        return {(slide_id, version) for slide_id, version in rows}

    async def versions(self, principal: Principal, deck_id: str, index: int) -> SlideVersionList:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            slide = _at(await self._slides(session, deck_id), index)
            rows = (await session.exec(select(SlideVersion).where(SlideVersion.slide_id == slide.id)
                                       .order_by(col(SlideVersion.version).desc()))).all()  # fmt: skip
        return SlideVersionList(items=[SlideVersionRead(version=row.version, cause=row.cause,
                                                        current=row.version == slide.version,
                                                        content=SlideContent(**row.content),
                                                        created_at=row.created_at) for row in rows])  # fmt: skip

    async def export(self, principal: Principal, deck_id: str) -> Download:
        """The .pptx as the deck is now (rendered again first if a change has not reached the file yet)."""
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
        if deck.rendered_version < deck.version:
            await self._render(principal, deck_id)
        return await self._artifacts.download(principal, deck.artifact_id)

    # -- changing -----------------------------------------------------------------------------------------------

    async def add_slide(self, principal: Principal, deck_id: str, slide: SlideCreate) -> DeckRead:
        require_scope(principal, Scope.GENERATION)
        content = SlideContent(**slide.model_dump(exclude={"position"}))
        async with self._db.transaction(exclusive=f"deck:{deck_id}") as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            slides = await self._slides(session, deck_id)
            if len(slides) >= 50:
                raise ValidationFailedError("a deck has at most 50 slides", code="too_many_slides")
            position = len(slides) if slide.position is None else min(slide.position, len(slides))
            for moved in slides[position:]:
                moved.position += 1
                session.add(moved)
            await session.flush()
            self._add_slide_row(session, deck, position, content, "added")
            self._touch(session, deck)
        return await self._changed(principal, deck_id)

    async def edit_slide(self, principal: Principal, deck_id: str, index: int, edit: SlideEdit) -> DeckRead:
        require_scope(principal, Scope.GENERATION)
        # null removes what may be absent (a subtitle, a table, a chart); for the rest it means "unchanged"
        changes = {key: value for key, value in edit.model_dump(exclude_unset=True, exclude={"version"}).items()
                   if value is not None or key in ("subtitle", "table", "chart")}  # fmt: skip
        async with self._db.transaction(exclusive=f"deck:{deck_id}") as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            slide = _at(await self._slides(session, deck_id), index)
            if edit.version is not None and edit.version != slide.version:
                raise ConflictError(f"the slide is at version {slide.version} now: reload it", code="edit_conflict")
            merged = {**slide.content, **{k: v for k, v in changes.items()}}
            try:
                content = SlideContent.model_validate(merged)
            except ValidationError as exc:
                raise ValidationFailedError("the edited slide is not valid",
                                            details=exc.errors(include_url=False, include_input=False)) from exc
            if content.model_dump(mode="json") != slide.content:
                self._new_version(session, slide, content, "edited")
                self._touch(session, deck)
        return await self._changed(principal, deck_id)

    async def delete_slide(self, principal: Principal, deck_id: str, index: int) -> DeckRead:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(exclusive=f"deck:{deck_id}") as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            slides = await self._slides(session, deck_id)
            slide = _at(slides, index)
            if len(slides) == 1:
                raise ConflictError("a deck keeps at least one slide: delete the deck instead", code="last_slide")
            await session.delete(slide)
            await session.flush()
            for moved in slides[index + 1:]:
                moved.position -= 1
                session.add(moved)
            self._touch(session, deck)
        return await self._changed(principal, deck_id)

    async def reorder(self, principal: Principal, deck_id: str, request: ReorderRequest) -> DeckRead:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(exclusive=f"deck:{deck_id}") as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            if request.version is not None and request.version != deck.version:
                raise ConflictError(f"the deck is at version {deck.version} now: reload it", code="edit_conflict")
            slides = await self._slides(session, deck_id)
            if sorted(request.order) != list(range(len(slides))):
                raise ValidationFailedError(
                    f"order must name each of the {len(slides)} slides' positions (0 to {len(slides) - 1}) once",
                    code="not_a_permutation")  # fmt: skip
            if request.order != list(range(len(slides))):
                for position, old in enumerate(request.order):
                    slides[old].position = position
                    session.add(slides[old])
                self._touch(session, deck)
        return await self._changed(principal, deck_id)

    async def restore(self, principal: Principal, deck_id: str, index: int, version: int) -> DeckRead:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(exclusive=f"deck:{deck_id}") as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            slide = _at(await self._slides(session, deck_id), index)
            old = await session.get(SlideVersion, (slide.id, version))
            if old is None:
                raise NotFoundError("version not found")
            if old.content != slide.content:
                self._new_version(session, slide, SlideContent(**old.content), "restored")
                self._touch(session, deck)
        return await self._changed(principal, deck_id)

    async def regenerate(self, principal: Principal, deck_id: str, index: int, request: RegenerateRequest) -> DeckRead:
        """The model writes one slide again (the others untouched): a new version of it, paid like any call."""
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            slides = await self._slides(session, deck_id)
            slide = _at(slides, index)
        model = self._models.resolve(request.model or (deck.model if self._models.has(deck.model) else None))
        current = SlideContent(**slide.content)
        layout: Layout = request.layout or current.layout
        passages: list[SourcePassage] = []
        if deck.sources:  # the deck's own passages, read again by their resources
            ids = list(dict.fromkeys(s["resource_id"] for s in deck.sources))
            with contextlib.suppress(DomainError):  # a resource deleted since: write from the topic alone
                passages = await self._passages(principal, ids, current.title, None)
        titles = [SlideContent(**s.content).title for s in slides]
        written_layout = "section" if layout == "title" else layout  # a title slide is written as its words
        messages = self._slide_prompt(deck.topic or deck.title, None, passages, deck.title, titles,
                                      current.title or deck.title, written_layout, current,
                                      request.instructions)  # fmt: skip
        async with self._call_run(principal, deck_id) as run:
            written = await self._calls.complete_json(Payer(user_id=principal.user.id, run=run), model, messages,
                                                      _slide_model(written_layout, len(passages)),
                                                      frequency_penalty=FREQUENCY_PENALTY)  # fmt: skip
        content = _content(written_layout, written, passages, titles=[t for t in titles if t != current.title])
        if layout == "title":
            content = content.model_copy(update={"layout": "title"})
        async with self._db.transaction(exclusive=f"deck:{deck_id}") as session:
            deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
            fresh = await session.get(DeckSlide, slide.id)
            if fresh is None:
                raise NotFoundError("slide not found")
            if fresh.version != slide.version:
                raise ConflictError("the slide changed while it was being rewritten: reload it", code="edit_conflict")
            self._new_version(session, fresh, content, "regenerated")
            self._touch(session, deck)
        return await self._changed(principal, deck_id)

    @contextlib.asynccontextmanager
    async def _call_run(self, principal: Principal, deck_id: str) -> AsyncIterator[RunHandle]:
        """A run for a model call made while the client waits (its usage events, its stop), ended with the call."""
        run = self._runs.new_run(user_id=principal.user.id, kind=REGENERATE_KIND, subject_id=deck_id)
        async with self._db.transaction() as session:
            session.add(run)
        handle = self._runs.open(run)
        try:
            yield handle
        except CallStoppedError as exc:
            await handle.finish(RunStatus.CANCELLED, "cancelled", error_message="stopped")
            raise ConflictError("the slide was not rewritten: the call was stopped", code="stopped") from exc
        except DomainError as exc:
            await handle.finish(RunStatus.FAILED, exc.code, error_message=exc.message)
            raise
        except BaseException:
            await handle.finish(RunStatus.FAILED, "internal", error_message="the call failed")
            raise
        await handle.finish(RunStatus.DONE)

    def _new_version(self, session: AsyncSession, slide: DeckSlide, content: SlideContent, cause: str) -> None:
        now = self._clock()
        stored = content.model_dump(mode="json")
        slide.version += 1
        slide.content, slide.updated_at = stored, now
        session.add(slide)
        session.add(SlideVersion(slide_id=slide.id, version=slide.version, content=stored, cause=cause,
                                 created_at=now))  # fmt: skip

    def _touch(self, session: AsyncSession, deck: Deck) -> None:
        deck.version += 1
        deck.updated_at = self._clock()
        session.add(deck)

    async def _changed(self, principal: Principal, deck_id: str) -> DeckRead:
        """After a change: the .pptx rendered again, the changed slides' thumbnails asked for, the deck read. The
        change is saved already: a failure to render or to ask for thumbnails is logged, not answered (a retry would
        make the change twice); the export renders again when its file is behind."""
        try:
            await self._render(principal, deck_id)
            await self.ensure_thumbnails(principal, deck_id)
        except Exception:
            log.exception("deck %s changed but was not rendered again", deck_id)
        return await self.get(principal, deck_id)

    async def _render(self, principal: Principal, deck_id: str) -> None:
        """The deck's file made again from its slides as they are now (changes of a deck one at a time here, so the
        last file written is of the last state)."""
        async with self._changes.hold(deck_id):
            async with self._db.transaction(readonly=True) as session:
                deck = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
                slides = await self._slides(session, deck_id)
            if deck.rendered_version >= deck.version:
                return
            template = await self._template_or_none(principal, deck.template_id)
            spec = DeckSpec(title=deck.title, slides=[SlideContent(**s.content) for s in slides])
            data = await asyncio.to_thread(render.render_deck, spec, theme=deck.theme, template=template)
            async with self._db.transaction(exclusive=f"deck:{deck_id}") as session:
                current = await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
                if current.rendered_version >= deck.version:  # another instance wrote a newer file meanwhile
                    return
                await self._artifacts.replace(principal.user.id, deck.artifact_id, data, session=session)
                current.rendered_version = deck.version
                session.add(current)

    async def _template_or_none(self, principal: Principal, template_id: str | None) -> bytes | None:
        """A deck's template, or none when it was deleted since (the deck then takes its theme)."""
        try:
            return await self._template_bytes(principal, template_id)
        except NotFoundError:
            return None

    async def delete(self, principal: Principal, deck_id: str) -> None:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
        await self._jobs.delete(principal, deck_id)

    # -- thumbnails ---------------------------------------------------------------------------------------------

    async def thumbnail(
        self, principal: Principal, deck_id: str, index: int, wait_s: float
    ) -> tuple[bytes | None, str]:
        """A slide's PNG for its current version and the ETag to serve it with, waiting up to ``wait_s`` while it is
        made (``None`` when it is not ready by then). 503 when LibreOffice is not installed."""
        require_scope(principal, Scope.GENERATION)
        deadline = time.monotonic() + wait_s
        asked = False
        while True:
            async with self._db.transaction(readonly=True) as session:
                await get_owned(session, Deck, deck_id, principal.user.id, missing="deck not found")
                slide = _at(await self._slides(session, deck_id), index)
                found = await session.get(SlideThumbnail, (slide.id, slide.version))
            etag = f'"{slide.id}-{slide.version}"'
            if found is not None:
                return found.png, etag
            reason = thumbnails.available()
            if reason is not None:
                raise UpstreamUnavailableError(reason, code="thumbnails_unavailable")
            if self._failed_lately(slide.id, slide.version):
                raise UpstreamUnavailableError("LibreOffice could not draw this slide; edit it or try again later",
                                               code="thumbnails_failed")  # fmt: skip
            if not asked:
                await self.ensure_thumbnails(principal, deck_id)
                asked = True
            if time.monotonic() >= deadline:
                return None, etag
            await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    async def ensure_thumbnails(self, principal: Principal, deck_id: str) -> None:
        """Ask for the thumbnails the deck's slides lack (one job per deck at a time; it draws what changed
        meanwhile before it ends)."""
        if deck_id in self._thumbnailing or thumbnails.available() is not None:
            return
        self._thumbnailing.add(deck_id)
        try:
            await self._jobs.submit(principal, THUMBNAILS_KIND, ThumbnailParams(deck_id=deck_id))
        except QuotaExceededError:  # the user's queue is full: the next look at a thumbnail asks again
            self._thumbnailing.discard(deck_id)
        except BaseException:
            self._thumbnailing.discard(deck_id)
            raise

    async def _thumbnail_job(self, params: ThumbnailParams, job: JobContext) -> dict[str, Any]:
        made = 0
        try:
            while drawn := await self._thumbnail_stale(job.principal, params.deck_id):
                made += drawn
                job.progress("thumbnails", made, None)
        finally:
            self._thumbnailing.discard(params.deck_id)
        # A change that came after the last look but before the mark went finds no job: look once more.
        if await self._stale(params.deck_id):
            await self.ensure_thumbnails(job.principal, params.deck_id)
        return {"deck_id": params.deck_id, "thumbnails": made}

    async def _thumbnails_ended(self, job_id: str, status: str, code: str | None, message: str | None) -> None:
        async with self._db.transaction(readonly=True) as session:  # the job's row says which deck it drew
            run = await session.get(Run, job_id)
        if run is not None and run.params:
            self._thumbnailing.discard(str(run.params.get("deck_id")))

    def _failed_lately(self, slide_id: str, version: int) -> bool:
        failed_at = self._undrawable.get((slide_id, version))
        if failed_at is not None and time.monotonic() - failed_at > RETRY_UNDRAWABLE_S:
            del self._undrawable[(slide_id, version)]
            return False
        return failed_at is not None

    async def _stale(self, deck_id: str) -> list[DeckSlide]:
        """The slides without a picture of their current version, but those that failed to draw lately."""
        async with self._db.transaction(readonly=True) as session:
            slides = await self._slides(session, deck_id)
            ready = await self._thumbnails_ready(session, slides)
        return [slide for slide in slides
                if (slide.id, slide.version) not in ready and not self._failed_lately(slide.id, slide.version)]

    async def _thumbnail_stale(self, principal: Principal, deck_id: str) -> int:
        """Draw the slides whose current version has no thumbnail: only those slides are rendered and converted
        (a slide looks the same alone as in its deck), and stored per slide version."""
        async with self._db.transaction(readonly=True) as session:
            deck = await session.get(Deck, deck_id)
        if deck is None or deck.user_id != principal.user.id:
            return 0
        stale = await self._stale(deck_id)
        if not stale:
            return 0
        template = await self._template_or_none(principal, deck.template_id)
        spec = DeckSpec(title=deck.title, slides=[SlideContent(**s.content) for s in stale])
        data = await asyncio.to_thread(render.render_deck, spec, theme=deck.theme, template=template)
        try:
            pngs = await thumbnails.pptx_to_pngs(data, width=self._thumbnail_width, expected=len(stale),
                                                 timeout_s=self._thumbnail_timeout_s)  # fmt: skip
        except DomainError:
            failed_at = time.monotonic()
            self._undrawable.update({(slide.id, slide.version): failed_at for slide in stale})
            raise
        now = self._clock()
        async with self._db.transaction() as session:
            for slide, png in zip(stale, pngs, strict=True):
                if await session.get(SlideThumbnail, (slide.id, slide.version)) is None and \
                        await session.get(DeckSlide, slide.id) is not None:  # fmt: skip
                    session.add(SlideThumbnail(slide_id=slide.id, version=slide.version, png=png, created_at=now))
            # Pictures of versions a slide has left are of no use any more.
            for slide in stale:
                await session.exec(sa.delete(SlideThumbnail).where(
                    col(SlideThumbnail.slide_id) == slide.id, col(SlideThumbnail.version) < slide.version))
        return len(stale)

    # -- templates ----------------------------------------------------------------------------------------------

    async def upload_template(self, principal: Principal, filename: str, data: bytes) -> TemplateRead:
        """Keep a .pptx whose masters and layouts decks can use: checked by its content (415 otherwise)."""
        require_scope(principal, Scope.GENERATION)
        try:
            layouts = await asyncio.to_thread(_template_layouts, data)
        except ValueError as exc:
            raise UnsupportedMediaTypeError(f"not a PowerPoint template: {exc}", code="not_a_pptx") from exc
        name = re.sub(r"\.(pptx|potx)$", "", filename or "template", flags=re.IGNORECASE)[:200] or "template"
        artifact = await self._artifacts.save(user_id=principal.user.id, kind="pptx_template",
                                              filename=f"{_slug(name)}.pptx", media_type=PPTX, data=data,
                                              title=name, scope=Scope.GENERATION)  # fmt: skip
        row = DeckTemplate(id=new_id("tpl"), user_id=principal.user.id, name=name, artifact_id=artifact.id,
                           layouts=layouts, created_at=self._clock())  # fmt: skip
        async with self._db.transaction() as session:
            session.add(row)
        return _template_read(row)

    async def list_templates(self, principal: Principal) -> TemplateList:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            rows = (await session.exec(select(DeckTemplate).where(DeckTemplate.user_id == principal.user.id)
                                       .order_by(col(DeckTemplate.created_at).desc()))).all()  # fmt: skip
        return TemplateList(items=[_template_read(row) for row in rows])

    async def delete_template(self, principal: Principal, template_id: str) -> None:
        """Decks made with it keep their slides and take their theme from here on."""
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction() as session:
            row = await get_owned(session, DeckTemplate, template_id, principal.user.id, missing="template not found")
            await session.delete(row)
        with contextlib.suppress(NotFoundError):
            await self._artifacts.delete(principal, row.artifact_id)


def _template_layouts(data: bytes) -> list[str]:
    render.check_template(data)
    return render.template_layouts(data)


def _at(slides: list[DeckSlide], index: int) -> DeckSlide:
    if not 0 <= index < len(slides):
        raise NotFoundError(f"slide {index} not found (the deck has {len(slides)}, from 0)", code="slide_not_found")
    return slides[index]


def _summary(deck: Deck, count: int) -> DeckSummary:
    return DeckSummary(id=deck.id, title=deck.title, theme=deck.theme, template_id=deck.template_id,
                       slide_count=count, version=deck.version, artifact_id=deck.artifact_id,
                       created_at=deck.created_at, updated_at=deck.updated_at)  # fmt: skip


def _deck_read(deck: Deck, slides: list[DeckSlide], ready: set[tuple[str, int]], pptx: ArtifactRead) -> DeckRead:
    summary = _summary(deck, len(slides))
    return DeckRead(
        **summary.model_dump(), topic=deck.topic, model=deck.model,
        slides=[SlideRead(**slide.content, index=slide.position, id=slide.id, version=slide.version,
                          thumbnail_url=f"{API}/{deck.id}/slides/{slide.position}/thumbnail?v={slide.id}-{slide.version}",
                          thumbnail_ready=(slide.id, slide.version) in ready, updated_at=slide.updated_at)
                for slide in slides],
        sources=[SlideCitation(**s) for s in deck.sources], pptx=pptx, export_url=f"{API}/{deck.id}/export",
    )  # fmt: skip


def _template_read(row: DeckTemplate) -> TemplateRead:
    return TemplateRead(id=row.id, name=row.name, layouts=row.layouts, artifact_id=row.artifact_id,
                        created_at=row.created_at)  # fmt: skip
