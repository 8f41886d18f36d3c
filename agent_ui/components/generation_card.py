"""The chat's card for generation tools (a deck, a podcast, a text). The tool only starts the work; the card follows
it to its file: the stage and a bar with Cancel while it is made, then the first slides with "Open in Slides" and
the .pptx, the player, or the text with its file. Drawn again from the chat's history, it looks the work up anew.

The work does not belong to the chat turn: stopping the turn, leaving or reloading the page leaves it going, and
only the card's Cancel stops it. A card that is deleted (the chat redraws an answer) stops following."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from nicegui import app, background_tasks, ui

from agent_ui.components.a11y import named
from agent_ui.components.podcast import describe_progress, overall_fraction

# The deck job's progress reads as it does on the Slides page: one wording and one bar for both.
from agent_ui.components.slides import describe_progress as describe_deck
from agent_ui.components.slides import overall_fraction as deck_fraction
from agent_ui.components.tool_cards import CardContext, as_dict, card_context
from services.errors import ConflictError, DomainError, NotFoundError
from services.generation import DeckService
from services.generation.schemas import DeckRead
from services.jobs import JobRead
from services.runs import RunEvent
from services.tts import PodcastService

log = logging.getLogger(__name__)

FAMILY = "generation"  # the jobs family decks and podcasts are listed in
PROSE_KIND = "prose"  # prose is a run of this kind, not a job
ACTIVE = frozenset({"queued", "running"})
POLL_S = 0.7  # following a job
THUMBNAILS_POLL_S = 2.0  # a finished deck whose thumbnails are still being drawn
THUMBNAILS_WAIT_S = 180.0  # then the tiles keep their titles
SHOWN_SLIDES = 4
TEXT_FLUSH_S = 0.15  # the text of a prose run reaches the page at most this often
ARTIFACTS = "/api/v1/agent/artifacts"
SLIDES_API = "/api/v1/agent/slides"
CSS_FLAG = "generation-card-css"


@dataclass(frozen=True)
class Kind:
    key: str
    label: str  # "Slides"
    noun: str  # "deck"
    icon: str


KINDS = {
    "ppt": Kind("ppt", "Slides", "deck", "slideshow"),
    "podcast": Kind("podcast", "Podcast", "podcast", "podcasts"),
    "prose": Kind("prose", "Text", "text", "article"),
}
TOOL_KINDS = {"generate_deck": "ppt", "generate_podcast": "podcast", "write_prose": "prose"}
STATUS = {  # status -> (badge text, Quasar colour)
    "starting": ("Starting", "grey-7"),
    "queued": ("Waiting", "grey-7"),
    "running": ("In progress", "primary"),
    "done": ("Ready", "positive"),
    "failed": ("Failed", "negative"),
    "cancelled": ("Cancelled", "grey-7"),
    "interrupted": ("Interrupted", "negative"),
    "gone": ("Deleted", "grey-7"),
    "started": ("Started", "primary"),
}
# Where each stage of a deck sits on the one bar (each stage reports its own done/total).
COUNTED_STAGES = frozenset({"slides", "voices"})  # stages whose done/total is shown as n/N

CSS = """
.gen-card { width: 100%; border: 1px solid rgba(0, 0, 0, 0.12); border-radius: 12px; padding: 12px;
  display: flex; flex-direction: column; gap: 10px; min-width: 0; }
.body--dark .gen-card { border-color: rgba(255, 255, 255, 0.16); }
.gen-card-head { display: flex; align-items: center; gap: 12px; min-width: 0; }
.gen-card-icon { flex: none; width: 40px; height: 40px; border-radius: 10px; display: flex; align-items: center;
  justify-content: center; }
.gen-card-icon--ppt { background: rgba(210, 71, 38, 0.12); color: #b23c1f; }
.gen-card-icon--podcast { background: rgba(123, 31, 162, 0.12); color: #7b1fa2; }
.gen-card-icon--prose { background: rgba(31, 111, 178, 0.12); color: #1f6fb2; }
.body--dark .gen-card-icon--ppt { color: #ff9e80; }
.body--dark .gen-card-icon--podcast { color: #ce93d8; }
.body--dark .gen-card-icon--prose { color: #8cc4f5; }
.gen-card-heading { flex: 1; min-width: 0; display: flex; flex-direction: column; }
.gen-card-title { font-weight: 500; line-height: 1.3; display: -webkit-box; -webkit-line-clamp: 2;
  -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere; }
.gen-card-caption { font-size: 0.8125rem; opacity: 0.72; }
.gen-card-body { display: flex; flex-direction: column; gap: 10px; min-width: 0; }
.gen-card-body:empty { display: none; }
.gen-progress-line { display: flex; align-items: center; gap: 8px; min-width: 0; font-size: 0.875rem; }
.gen-stage { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.gen-count { font-variant-numeric: tabular-nums; opacity: 0.72; }
.gen-thumbs { display: grid; gap: 8px; grid-template-columns: repeat(4, minmax(0, 1fr)); }
@media (max-width: 599px) { .gen-thumbs { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
.gen-thumb { position: relative; aspect-ratio: 16 / 9; border-radius: 6px; overflow: hidden;
  border: 1px solid rgba(0, 0, 0, 0.12); background: #f3f4f6; color: inherit; text-decoration: none; display: block; }
.body--dark .gen-thumb { border-color: rgba(255, 255, 255, 0.16); background: #2a2a2a; }
.gen-thumb img { width: 100%; height: 100%; object-fit: cover; display: block; }
.gen-thumb-text { position: absolute; inset: 0; padding: 6px 8px; font-size: 0.75rem; line-height: 1.25;
  overflow: hidden; overflow-wrap: anywhere; }
.gen-thumb-n { font-weight: 600; opacity: 0.6; margin-right: 4px; }
.gen-thumb-more { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  background: rgba(0, 0, 0, 0.55); color: #fff; font-weight: 600; font-size: 1.1rem; }
.gen-actions { display: flex; flex-wrap: wrap; gap: 8px; }
.gen-text { position: relative; max-height: 11rem; overflow: hidden; display: flex; flex-direction: column;
  font-size: 0.9rem; }
.gen-text--writing { justify-content: flex-end;
  -webkit-mask-image: linear-gradient(to bottom, transparent 0, #000 2.5rem);
  mask-image: linear-gradient(to bottom, transparent 0, #000 2.5rem); }
.gen-text--collapsed { -webkit-mask-image: linear-gradient(to bottom, #000 60%, transparent);
  mask-image: linear-gradient(to bottom, #000 60%, transparent); }
.gen-text--open { max-height: none; }
.gen-text .nicegui-markdown > :first-child { margin-top: 0; }
.gen-text h1 { font-size: 1.25rem; line-height: 1.4; margin: 0 0 0.5rem; font-weight: 600; }
.gen-text h2 { font-size: 1.05rem; line-height: 1.4; margin: 0.75rem 0 0.25rem; font-weight: 600; }
.gen-text p { margin: 0 0 0.5rem; }
.gen-note { font-size: 0.875rem; overflow-wrap: anywhere; }
"""


# -- pure helpers (tested on their own) ------------------------------------------------------------------------------


def open_url(kind: str, work_id: str) -> str:
    """The page that shows the work: the deck in Slides, the podcast, the text."""
    key = quote(work_id, safe="")
    return {"ppt": f"/generate/slides?deck={key}", "podcast": f"/generate/podcast?job={key}"}.get(
        kind, f"/generate/prose?run={key}"
    )


def export_url(deck_id: str) -> str:
    return f"{SLIDES_API}/{quote(deck_id, safe='')}/export"


def artifact_url(artifact_id: str) -> str:
    return f"{ARTIFACTS}/{quote(artifact_id, safe='')}"


def job_progress(job: JobRead) -> tuple[float | None, str, str]:
    """The bar's fraction (None: indeterminate), the stage in words and its count ("3/6", or "")."""
    if job.kind == "podcast":
        fraction, stage = overall_fraction(job), describe_progress(job)
    else:
        fraction, stage = deck_fraction(job), describe_deck(job)
    progress = job.progress
    count = ""
    if progress is not None and progress.stage in COUNTED_STAGES and progress.total and progress.total > 1:
        count = f"{min(progress.done or 0, progress.total):g}/{progress.total:g}"
    return fraction, stage, count


def job_title(job: JobRead) -> str:
    """What a job is called: its title once made, else what it was asked to be about."""
    for value in ((job.result or {}).get("title"), job.params.get("title"), job.params.get("topic")):
        if value:
            return " ".join(str(value).split())[:120]
    return "From your text" if job.params.get("text") else "From your resources"


def ended_text(kind: Kind, status: str, reason: str | None) -> str:
    """Why the work ended without its file, in one sentence."""
    if status == "cancelled":
        return f"Cancelled: the {kind.noun} was not finished."
    if status == "interrupted":
        return f"The {kind.noun} was interrupted by a server restart" + (f": {reason}." if reason else ".")
    return f"The {kind.noun} could not be made: {reason or 'it failed'}."


def plain_error(error: str) -> str:
    """A tool's error as a person reads it: without the exception's class name the tool runner puts first."""
    return re.sub(r"^[A-Z]\w*(?:Error|Exception): ", "", error).strip() or "it failed"


def add_card_css() -> None:
    """The cards' styles, once per page."""
    storage = app.storage.client
    if not storage.get(CSS_FLAG):
        storage[CSS_FLAG] = True
        ui.add_css(CSS)


def link_button(text: str, icon: str, href: str, *, primary: bool = False, download: bool = False) -> ui.button:
    """A link that looks like a button (an ``<a href>``: it opens in a new tab, downloads, is read as a link)."""
    button = ui.button(text, icon=icon).props("no-caps " + ("unelevated" if primary else "outline"))
    button.props["href"] = href
    if download:
        button.props["download"] = ""
    return button


def status_badge(status: str) -> ui.badge:
    text, color = STATUS.get(status, (status.capitalize(), "grey-7"))
    return ui.badge(text, color=color).props("rounded")


# -- the card --------------------------------------------------------------------------------------------------------


class Tile:
    """One of a deck's first slides: its thumbnail once drawn, its number and title until then; a link to the deck."""

    def __init__(self, href: str, number: int, title: str) -> None:
        self.showing = ""  # the thumbnail URL shown, or "" for the title
        with ui.link(target=href).classes("gen-thumb").mark("gen-thumb") as self.link:
            named(self.link, f"Slide {number}: {title}")
            self.holder = ui.element("div").classes("absolute-full")

    def show(self, number: int, title: str, thumbnail: str | None) -> None:
        if self.showing == (thumbnail or "") and self.holder.default_slot.children:
            return
        self.showing = thumbnail or ""
        self.holder.clear()
        with self.holder:
            if thumbnail is not None:
                image = ui.element("img").mark("gen-thumb-img")
                image.props.update(src=thumbnail, alt=f"Slide {number}: {title}", loading="lazy")
            else:
                with ui.element("div").classes("gen-thumb-text").mark("gen-thumb-title"):
                    ui.label(str(number)).classes("gen-thumb-n inline")
                    ui.label(title).classes("inline")

    def more(self, count: int) -> None:
        """ "+2": the deck has more slides than the card shows."""
        with self.link:
            ui.label(f"+{count}").classes("gen-thumb-more").mark("gen-more")


class GenerationCard(ui.element):
    """One call of a generation tool: what it started, followed to the file (see the module's docstring)."""

    def __init__(self, call: dict[str, Any], result: dict[str, Any] | None, context: CardContext | None) -> None:
        super().__init__("div")
        add_card_css()
        arguments = as_dict(call.get("arguments"))
        ok = result is not None and bool(result.get("ok"))
        output = as_dict(result.get("output")) if ok and result is not None else {}
        self.kind = KINDS.get(str(output.get("kind") or TOOL_KINDS.get(str(call.get("name")), "ppt")), KINDS["ppt"])
        self.work_id: str | None = str(output.get("job_id") or output.get("run_id") or "") or None
        self._context = context
        self._busy = False
        self._status = ""
        self._bar: ui.linear_progress | None = None
        self._stage: ui.label | None = None
        self._count: ui.label | None = None
        self._tiles: list[Tile] = []  # a finished deck's first slides
        self._writing: ui.markdown | None = None  # a prose run's text while it is written
        self._thumbs_since: float | None = None
        self._task: asyncio.Task[None] | None = None  # following a prose run
        title = output.get("title") or arguments.get("topic") or arguments.get("prompt") or self.kind.label
        self.classes("gen-card").mark("tool-card", "generation-card", f"generation-card-{self.kind.key}")
        with self:
            with ui.element("div").classes("gen-card-head"):
                with ui.element("div").classes(f"gen-card-icon gen-card-icon--{self.kind.key}"):
                    ui.icon(self.kind.icon, size="22px").props('aria-hidden="true"')
                with ui.element("div").classes("gen-card-heading"):
                    self.title = ui.label(" ".join(str(title).split())).classes("gen-card-title").mark("gen-title")
                    self.caption = ui.label(self._caption(arguments)).classes("gen-card-caption").mark("gen-caption")
                self.badge = status_badge("starting").mark("gen-status")
            self.body = ui.element("div").classes("gen-card-body")
            following = result is not None and ok and context is not None and self.work_id is not None
            self.timer = ui.timer(POLL_S, self._poll, active=following and self.kind.key != PROSE_KIND)
        if result is None:
            self._starting()
        elif not ok:
            self._set_status("failed")
            with self.body:
                error = plain_error(str(result.get("error") or "the tool failed"))
                ui.label(f"The {self.kind.noun} could not be started: {error}").classes("gen-note text-negative").mark(
                    "gen-error"
                )
        elif not following:
            self._set_status("started")
            if self.work_id is not None:
                with self.body, ui.element("div").classes("gen-actions"):
                    link_button("Open", "open_in_new", open_url(self.kind.key, self.work_id)).mark("gen-open")
        elif self.kind.key == PROSE_KIND:
            self._task = background_tasks.create(self._follow_prose(), name=f"follow-prose-{self.work_id}",
                                                 context=self)  # fmt: skip

    def _caption(self, arguments: dict[str, Any]) -> str:
        if self.kind.key == "ppt":
            count = arguments.get("slide_count", 6)
            return f"Slides · {count} slide{'s' if count != 1 else ''}"
        if self.kind.key == "podcast":
            return f"Podcast · {arguments.get('length', 'short')}"
        return f"Text · {arguments.get('style', 'article')}"

    def _set_status(self, status: str) -> None:
        if status == self._status:
            return
        self._status = status
        text, color = STATUS.get(status, (status.capitalize(), "grey-7"))
        self.badge.set_text(text)
        self.badge.props(f"color={color}")

    def _redraw(self) -> None:
        self.body.clear()
        self._bar = self._stage = self._count = None
        self._tiles = []
        self._writing = None

    def _handle_delete(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        super()._handle_delete()

    def _stop(self) -> None:
        self.timer.deactivate()

    # -- states --------------------------------------------------------------------------------------------

    def _starting(self) -> None:
        self._set_status("starting")
        with self.body:
            named(ui.linear_progress(show_value=False, size="8px").props("indeterminate rounded"),
                  f"Starting the {self.kind.noun}")  # fmt: skip
            ui.label(f"Starting the {self.kind.noun}…").classes("gen-note text-grey-8").mark("gen-stage")

    def _progress(self, fraction: float | None, stage: str, count: str, *, cancel_label: str = "Cancel") -> None:
        """The bar, the stage and its count, with Cancel (built once, then updated in place)."""
        if self._bar is None or self._stage is None or self._count is None:
            self._redraw()
            with self.body:
                self._bar = ui.linear_progress(0, show_value=False, size="8px").props("rounded")
                named(self._bar, f"Progress of the {self.kind.noun}").mark("gen-progress")
                with ui.element("div").classes("gen-progress-line"):
                    self._stage = ui.label("").classes("gen-stage").mark("gen-stage")
                    self._count = ui.label("").classes("gen-count").mark("gen-count")
                    button = ui.button(cancel_label, icon="close", on_click=self.cancel).props(
                        "flat dense no-caps color=grey-8"
                    )
                    named(button, f"{cancel_label} the {self.kind.noun}").mark("gen-cancel")
        if fraction is None:
            self._bar.props("indeterminate")
        else:
            self._bar.props(remove="indeterminate")
            self._bar.set_value(fraction)
        self._stage.set_text(stage)
        self._count.set_text(count)
        self._count.visible = bool(count)

    def _ended(self, status: str, text: str) -> None:
        self._stop()
        self._set_status(status)
        self._redraw()
        with self.body:
            color = "text-grey-8" if status == "cancelled" else "text-negative"
            ui.label(text).classes(f"gen-note {color}").mark("gen-cancelled" if status == "cancelled" else "gen-error")

    def _gone(self) -> None:
        self._stop()
        self._set_status("gone")
        self._redraw()
        with self.body:
            ui.label(f"This {self.kind.noun} is no longer there: it was deleted.").classes("gen-note text-grey-8").mark(
                "gen-gone"
            )

    def _problem(self, message: str) -> None:
        self._stop()
        self._redraw()
        with self.body:
            ui.label(f"The {self.kind.noun} cannot be shown: {message}").classes("gen-note text-negative").mark(
                "gen-error"
            )

    # -- following a job (deck, podcast) ----------------------------------------------------------------------

    async def _poll(self) -> None:
        if self._busy or self._context is None or self.work_id is None:
            return
        self._busy = True
        try:
            await self._check(self._context)
        except DomainError as exc:
            self._problem(exc.message)
        except Exception:
            log.exception("following %s %s failed", self.kind.noun, self.work_id)
            self._problem("reload the page to try again.")
        finally:
            self._busy = False

    async def _check(self, context: CardContext) -> None:
        assert self.work_id is not None
        if self._tiles:  # done: only the thumbnails are still awaited
            await self._refresh_thumbnails(context)
            return
        try:
            job = await context.services.jobs.get(context.principal, self.work_id, family=FAMILY)
        except NotFoundError:
            self._gone()
            return
        if job.status in ACTIVE:
            self._set_status(job.status)
            self._progress(*job_progress(job))
            return
        if job.status != "done":
            self._ended(job.status, ended_text(self.kind, job.status, job.error.message if job.error else None))
            return
        self._set_status("done")
        if job.kind == "podcast":
            self._stop()
            await self._show_podcast(context, job)
        else:
            await self._show_deck(context, job)

    async def cancel(self) -> None:
        """Cancel the work (the chat turn that started it is not touched)."""
        context = self._context
        if context is None or self.work_id is None:
            return
        try:
            if self.kind.key == PROSE_KIND:
                await context.services.runs.request_stop(context.principal, self.work_id, kinds={PROSE_KIND})
            else:
                await context.services.jobs.cancel(context.principal, self.work_id, family=FAMILY)
        except ConflictError:
            pass  # it ended meanwhile: the next look shows how
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
            return
        if self.kind.key != PROSE_KIND:
            await self._poll()

    # -- a finished deck --------------------------------------------------------------------------------------

    async def _show_deck(self, context: CardContext, job: JobRead) -> None:
        decks = context.services.find(DeckService)
        deck_id = str((job.result or {}).get("deck_id") or job.id)
        deck: DeckRead | None = None
        if decks is not None:
            try:
                deck = await decks.get(context.principal, deck_id)
            except NotFoundError:
                self._gone()
                return
        self._redraw()
        shown = deck.slides[:SHOWN_SLIDES] if deck is not None else []
        if deck is not None:
            self.title.set_text(deck.title)
            self.caption.set_text(f"Slides · {deck.slide_count} slide{'s' if deck.slide_count != 1 else ''}")
        with self.body:
            if shown:
                with ui.element("div").classes("gen-thumbs").mark("gen-thumbs"):
                    self._tiles = [Tile(open_url("ppt", deck_id), slide.index + 1, slide.title) for slide in shown]
            with ui.element("div").classes("gen-actions"):
                link_button("Open in Slides", "slideshow", open_url("ppt", deck_id), primary=True).mark("gen-open")
                link_button("Download .pptx", "download", export_url(deck_id), download=True).mark("gen-download")
        if deck is None or not shown:
            self._stop()
            return
        self._fill_tiles(deck)
        if (more := deck.slide_count - len(shown)) > 0:
            self._tiles[-1].more(more)
        drawn = (job.result or {}).get("thumbnails")
        if isinstance(drawn, str) or all(slide.thumbnail_ready for slide in deck.slides[:SHOWN_SLIDES]):
            self._stop()  # all there, or never coming (LibreOffice missing): the tiles keep their titles
            return
        self._thumbs_since = time.monotonic()
        self.timer.interval = THUMBNAILS_POLL_S

    def _fill_tiles(self, deck: DeckRead) -> None:
        for tile, slide in zip(self._tiles, deck.slides, strict=False):
            tile.show(slide.index + 1, slide.title, slide.thumbnail_url if slide.thumbnail_ready else None)

    async def _refresh_thumbnails(self, context: CardContext) -> None:
        decks = context.services.find(DeckService)
        if decks is None or self.work_id is None:
            self._stop()
            return
        try:
            deck = await decks.get(context.principal, self.work_id)
        except NotFoundError:
            self._gone()
            return
        self._fill_tiles(deck)
        waited = time.monotonic() - (self._thumbs_since or 0.0)
        if all(slide.thumbnail_ready for slide in deck.slides[:SHOWN_SLIDES]) or waited > THUMBNAILS_WAIT_S:
            self._stop()

    # -- a finished podcast -----------------------------------------------------------------------------------

    async def _show_podcast(self, context: CardContext, job: JobRead) -> None:
        podcasts = context.services.find(PodcastService)
        source = artifact_url(str((job.result or {}).get("artifact_id") or ""))
        if podcasts is not None:
            try:
                podcast = await podcasts.get(context.principal, job.id)
            except NotFoundError:
                self._gone()
                return
            source = f"{podcast.audio.url}?v={podcast.audio.version}"
            self.title.set_text(podcast.title)
            minutes, seconds = divmod(int(podcast.duration_s), 60)  # as the player counts it
            voices = len(podcast.speakers)
            self.caption.set_text(f"Podcast · {minutes}:{seconds:02d} · {voices} voice{'s' if voices != 1 else ''}")
        self._redraw()
        with self.body:
            player = ui.audio(source).classes("w-full").mark("gen-audio")
            named(player, f"Podcast: {self.title.text}")
            with ui.element("div").classes("gen-actions"):
                link_button("Open", "open_in_new", open_url("podcast", job.id), primary=True).mark("gen-open")
                link_button("Download .mp3", "download", source.split("?")[0], download=True).mark("gen-download")

    # -- a prose run ------------------------------------------------------------------------------------------

    async def _follow_prose(self) -> None:
        """The text as it is written (the run's ``content.delta`` events, replayed from the start), then how the
        run ended: its file, or why there is none."""
        context = self._context
        assert context is not None and self.work_id is not None
        runs, principal = context.services.runs, context.principal
        parts: list[str] = []
        error: str | None = None
        shown_at = 0.0
        try:
            run = await runs.get(principal, self.work_id, kinds={PROSE_KIND})
            if run.status in ACTIVE:
                self._set_status("running")
                self._progress(None, "Writing…", "", cancel_label="Stop")
            async for batch in await runs.follow(principal, self.work_id, 0, kinds={PROSE_KIND}):
                error = _prose_events(batch, parts) or error
                if run.status in ACTIVE and time.monotonic() - shown_at >= TEXT_FLUSH_S:
                    self._prose_text("".join(parts))
                    shown_at = time.monotonic()
            run = await runs.get(principal, self.work_id, kinds={PROSE_KIND})
        except NotFoundError:
            self._gone()
            return
        except DomainError as exc:
            self._problem(exc.message)
            return
        text = "".join(parts).strip()
        result = run.result or {}
        if run.status == "done" or (run.status == "cancelled" and result.get("artifact_id")):
            self._prose_done(text, str(result.get("artifact_id") or ""), run.status,
                             str(result.get("title") or "") or None)  # fmt: skip
            return
        self._ended(run.status, ended_text(self.kind, run.status, error or run.error_message))

    def _prose_text(self, text: str) -> None:
        """The text so far, its latest lines in view, under the bar."""
        words = len(text.split())
        if self._stage is not None:
            self._stage.set_text(f"Writing… {words} word{'s' if words != 1 else ''}")
        if self._writing is None:
            with self.body, ui.element("div").classes("gen-text gen-text--writing").mark("gen-text"):
                self._writing = ui.markdown("").mark("gen-markdown")
        self._writing.set_content(text)

    def _prose_done(self, text: str, artifact_id: str, status: str, title: str | None) -> None:
        self._set_status("done" if status == "done" else "cancelled")
        if title:
            self.title.set_text(title)
        self._redraw()
        with self.body:
            long = len(text) > 500 or text.count("\n") > 6
            box = ui.element("div").classes("gen-text" + (" gen-text--collapsed" if long else "")).mark("gen-text")
            with box:
                ui.markdown(text).mark("gen-markdown")
            if long:
                toggle = ui.button("Show all", icon="expand_more").props("flat dense no-caps color=primary")
                toggle.classes("self-start").mark("gen-expand").on_click(lambda: _toggle(box, toggle))
            if status == "cancelled":
                ui.label("Stopped: the file holds what was written until then.").classes("gen-note text-grey-8")
            with ui.element("div").classes("gen-actions"):
                link_button("Open", "open_in_new", open_url(PROSE_KIND, self.work_id or ""), primary=True).mark(
                    "gen-open"
                )
                if artifact_id:
                    link_button("Download", "download", artifact_url(artifact_id), download=True).mark("gen-download")


def _prose_events(batch: list[RunEvent], parts: list[str]) -> str | None:
    """Collect the batch's text into ``parts``; the run's error message, if it says one."""
    error = None
    for event in batch:
        if event.type == "content.delta":
            parts.append(str(event.data.get("text") or ""))
        elif event.type == "error":
            error = str(event.data.get("message") or "") or None
    return error


def _toggle(box: ui.element, button: ui.button) -> None:
    opened = "gen-text--open" in box.classes
    box.classes(add="gen-text--collapsed" if opened else "gen-text--open",
                remove="gen-text--open" if opened else "gen-text--collapsed")  # fmt: skip
    button.set_text("Show all" if opened else "Show less")
    button.props(f"icon={'expand_more' if opened else 'expand_less'}")


def generation_card(call: dict[str, Any], result: dict[str, Any] | None) -> ui.element:
    """The tool card of ``generate_deck``, ``generate_podcast`` and ``write_prose`` (registered for the group)."""
    return GenerationCard(call, result, card_context())
