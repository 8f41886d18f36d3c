"""Prose in the browser: the form (what to write, its style and length, a title, resources to ground it in), the
text streaming in as markdown while it is written (Stop keeps what was written), then Copy, Download .md and the
sources it cites; and the user's recent texts.

The text shown is a run of kind ``prose``, read in-process with ``RunService.follow`` from its first event: a
finished run replays from the database, a running one goes on live. Deltas collect in memory and reach the page on
a timer a few times a second (markdown sends all its HTML on each update), not once per token."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nicegui import background_tasks, ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.chat_assets import ChatMarkdown, add_chat_assets
from agent_ui.components.citations import CITE_CLICK, Source, cited, source_chips
from agent_ui.components.resources import PassagePanel
from services.auth import Principal
from services.errors import ConflictError, DomainError, NotFoundError
from services.generation import ProseService
from services.generation.prose import KIND, WORDS, word_count
from services.generation.schemas import ProseRequest
from services.rag import RagService
from services.rag.schemas import ResourceRead
from services.runs import ACTIVE, Run, RunEvent, RunService

log = logging.getLogger(__name__)
KINDS = (KIND,)
FLUSH_S = 0.25  # a few renders a second: each one re-renders and resends the whole text
RETRY_S = 0.5  # a run live on another instance: its stored events are read again this often
STYLES = {"article": "Article", "summary": "Summary", "email": "Email", "story": "Story"}
LENGTHS = {"short": "Short", "medium": "Medium", "long": "Long"}
STATUS_TEXT = {"queued": "waiting", "running": "writing", "done": "done", "failed": "failed",
               "cancelled": "stopped", "interrupted": "interrupted"}  # fmt: skip
STATUS_COLORS = {"queued": "grey-7", "running": "warning", "done": "positive", "failed": "negative",
                 "cancelled": "grey-7", "interrupted": "negative"}  # fmt: skip
PROBLEMS = {
    "insufficient_credits": "You are out of credits for this. Top up under Settings → Credits, or choose a shorter "
    "length.",
    "resource_not_ready": "One of the chosen resources is not ready yet: wait until it is indexed, or leave it out.",
    "not_found": "One of the chosen resources is gone: choose them again.",
    "upstream_unavailable": "The writing model is not reachable right now. Try again in a moment.",
    "unknown_model": "That model is not offered here any more.",
    "interrupted": "The server restarted while this was being written.",
    "rag_disabled": "Resources are turned off on this instance: write without them.",
}
CSS = """
.prose-page { container-type: inline-size; width: 100%; }
.prose-grid { display: grid; gap: 1rem; grid-template-columns: minmax(0, 1fr); align-items: start; }
.prose-main { order: 0; scroll-margin-top: 72px; }
.prose-form { order: 1; }
.prose-recent { order: 2; }
/* Narrow: the text first once there is one (nothing, not even a gap, before). */
@container (max-width: 55.99rem) { .prose-main:has(.prose-empty) { display: none; } }
@container (min-width: 56rem) {
  .prose-grid { grid-template-columns: minmax(0, 22rem) minmax(0, 1fr); grid-template-rows: auto 1fr; }
  .prose-form { grid-column: 1; grid-row: 1; }
  .prose-recent { grid-column: 1; grid-row: 2; }
  .prose-main { grid-column: 2; grid-row: 1 / span 2; }
}
.prose-doc.q-card { padding: 16px 24px 24px; }
.prose-bar { border-bottom: 1px solid rgba(0, 0, 0, 0.08); padding-bottom: 8px; row-gap: 4px; }
.body--dark .prose-bar { border-bottom-color: rgba(255, 255, 255, 0.12); }
.prose-words:not(:empty)::before { content: "· "; }
@container (max-width: 35rem) {
  .prose-doc.q-card { padding: 12px 16px 20px; }
  .prose-kind { display: none; }  /* a phone: the state, the words and the buttons on one line */
  .prose-words:not(:empty)::before { content: none; }
}
.prose-actions .q-btn { min-height: 32px; }
.prose-md { max-width: 46rem; font-size: 1.0625rem; line-height: 1.7; }
.prose-md h1 { font-size: 1.75rem; line-height: 1.25; font-weight: 600; margin: 0.25rem 0 1rem; }
.prose-md h2 { font-size: 1.3rem; line-height: 1.35; font-weight: 600; margin: 1.5rem 0 0.5rem; }
.prose-md h3, .prose-md h4 { font-size: 1.1rem; line-height: 1.4; font-weight: 600; margin: 1.25rem 0 0.4rem; }
.prose-md p, .prose-md ul, .prose-md ol, .prose-md blockquote { margin: 0 0 0.9rem; }
.prose-md blockquote { border-left: 3px solid rgba(0, 0, 0, 0.15); padding-left: 1rem; color: rgba(0, 0, 0, 0.7); }
.body--dark .prose-md blockquote { border-left-color: rgba(255, 255, 255, 0.25); color: rgba(255, 255, 255, 0.75); }
/* While it is written, a caret at the end of the text. */
.prose-live .prose-md > :is(p, h1, h2, h3, h4):last-child::after,
.prose-live .prose-md > :is(ul, ol):last-child > li:last-child::after {
  content: ""; display: inline-block; width: 0.5em; height: 1.1em; margin-left: 2px; vertical-align: text-bottom;
  background: currentColor; opacity: 0.55; animation: prose-caret 1s steps(1) infinite;
}
@keyframes prose-caret { 50% { opacity: 0; } }
@media (prefers-reduced-motion: reduce) { .prose-live .prose-md *::after { animation: none !important; } }
.prose-note { font-size: 0.875rem; }
.prose-recent-item, .body--dark a.prose-recent-item { color: inherit; border-radius: 8px; text-decoration: none; }
.prose-recent-item:hover { background: rgba(0, 0, 0, 0.06); }
.prose-recent-item--current { background: rgba(31, 111, 178, 0.14); font-weight: 600; }
.body--dark .prose-recent-item:hover { background: rgba(255, 255, 255, 0.08); }
.body--dark .prose-recent-item--current { background: rgba(140, 196, 245, 0.2); }
"""
# While a text is written the window keeps its end in view, unless the reader scrolled away from the end.
JS = """
(() => {
  if (window.agentProse) return;
  const SLACK = 96;
  let follow = true;
  let queued = false;
  let last = null;  // the text being written at the last change: its last words arrive as it ends
  const live = () => document.querySelector(".prose-live .prose-text");
  const endInView = (el) => el.getBoundingClientRect().bottom <= window.innerHeight + SLACK;
  const keep = () => {
    queued = false;
    const el = live() || last;
    last = live();
    if (!el || !el.isConnected) { follow = true; return; }
    const over = el.getBoundingClientRect().bottom - window.innerHeight + 24;
    if (follow && over > 0) window.scrollBy({ top: over });
  };
  window.addEventListener("scroll", () => { const el = live(); if (el) follow = endInView(el); }, { passive: true });
  const start = () => new MutationObserver(() => {
    if (!queued && (live() || last)) { queued = true; requestAnimationFrame(keep); }
  }).observe(document.body, { childList: true, subtree: true, characterData: true });
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
  window.agentProse = { keep };
})();
"""


# -- pure helpers (tested on their own) ------------------------------------------------------------------------------


def words_text(n: int) -> str:
    return f"{n:,} word" + ("" if n == 1 else "s")


def length_hint(length: str) -> str:
    return f"About {WORDS.get(length, 400)} words"


def run_title(run: Run) -> str:
    """What a text is called: its title once saved, else the title asked for, else what it was asked to say."""
    result, params = run.result or {}, run.params or {}
    title = result.get("title") or params.get("title") or params.get("prompt") or "Untitled"
    return " ".join(str(title).split())[:80]


def source_of(data: Mapping[str, Any]) -> Source | None:
    """A prose ``citation`` event's source (its page and heading at the top level, or in ``position``)."""
    position = data.get("position")
    if not isinstance(position, dict):
        position = {"page": data.get("page"), "heading": data.get("heading")}
    return Source.of({**data, "position": position})


def problem(code: str, message: str) -> str:
    """A refusal or a failure as one plain sentence."""
    return PROBLEMS.get(code) or (message[:1].upper() + message[1:]).rstrip(".") + "."


def finish_note(reason: str | None) -> str | None:
    """What the reader should know about how the text ended (nothing for a normal end)."""
    if reason == "length":
        return "Cut at the length limit: the text ends where the model had to stop."
    if reason == "cancelled":
        return "Stopped: what was written until then is kept."
    return None


def request_problem(exc: ValidationError) -> str:
    fields = {str(part) for error in exc.errors() for part in error["loc"]}
    if "prompt" in fields:
        return "Say what to write, in at most 8,000 characters."
    if "title" in fields:
        return "The title can be at most 200 characters."
    if "rag_resource_ids" in fields:
        return "Choose at most 20 resources."
    return "Check the form: " + str(exc.errors()[0]["msg"])


@dataclass
class Writing:
    """What a run's events said so far."""

    text: str = ""
    sources: dict[int, Source] = field(default_factory=dict)
    artifact: dict[str, Any] | None = None
    finish_reason: str | None = None
    error: tuple[str, str] | None = None  # (code, message)
    last_id: int = 0

    @property
    def ended(self) -> bool:
        return self.finish_reason is not None or self.error is not None

    def apply(self, event: RunEvent) -> None:
        self.last_id = max(self.last_id, event.id)
        data = event.data
        if event.type == "content.delta":
            self.text += str(data.get("text") or "")
        elif event.type == "citation":
            if (source := source_of(data)) is not None:
                self.sources[source.n] = source
        elif event.type == "artifact":
            self.artifact = data
        elif event.type == "done":
            self.finish_reason = str(data.get("finish_reason") or "stop")
        elif event.type == "error":
            self.error = (str(data.get("code") or "error"), str(data.get("message") or "the text could not be written"))


def add_prose_assets() -> None:
    """The chat's markdown, citation and copy styles and code, and the page's own; inline, once per page."""
    add_chat_assets()
    ui.add_head_html(f"<style>{CSS}</style>\n<script>{JS}</script>")


def prose_grid() -> ui.element:
    """The page's body: enter it, then build the text, the form and the recent list, in that order."""
    with ui.element("div").classes("prose-page"):
        return ui.element("div").classes("prose-grid")


def disabled_notice() -> None:
    with ui.card().classes("w-full").mark("prose-off"):
        ui.label("Writing is turned off on this instance.").classes("text-lg")
        ui.label("An admin turns it on with AGENT_UI_GENERATION__ENABLED=true.").classes("text-grey-7")


# -- the form --------------------------------------------------------------------------------------------------------


class ProseForm:
    """What to write, the style, the length, an optional title and resources, and Write. A refusal is said under
    the button and what was typed stays."""

    def __init__(self, *, prose: ProseService, rag: RagService | None, principal: Principal,
                 on_started: Callable[[str], Awaitable[None]]) -> None:  # fmt: skip
        self._prose = prose
        self._rag = rag
        self._principal = principal
        self._on_started = on_started
        self._busy = False
        self.resources: ui.select | None = None
        self.root = ui.card().classes("prose-form w-full gap-3").mark("prose-form")

    async def build(self) -> None:
        ready: list[ResourceRead] = []
        if self._rag is not None:
            try:
                ready = [r for r in await self._rag.list_resources(self._principal) if r.status == "ready"]
            except DomainError:
                ready = []
        with self.root:
            ui.label("New text").classes("text-lg font-medium").props('role="heading" aria-level="2"')
            self.prompt = ui.textarea("What to write",
                                      placeholder="Why the sea has tides, for curious twelve-year-olds")  # fmt: skip
            self.prompt.props("outlined autogrow maxlength=8000 input-class=min-h-[4.5rem]").classes("w-full")
            self.prompt.mark("prose-prompt")
            self.prompt.on("keydown.ctrl.enter", self.submit)
            self.prompt.on("keydown.meta.enter", self.submit)
            ui.label("Style").classes("text-sm text-grey-8 -mb-2")
            self.style = named(ui.toggle(STYLES, value="article"), "Style").props("spread no-caps")
            self.style.classes("w-full").mark("prose-style")
            ui.label("Length").classes("text-sm text-grey-8 -mb-2")
            self.length = named(ui.toggle(LENGTHS, value="medium"), "Length").props("spread no-caps")
            self.length.classes("w-full").mark("prose-length")
            hint = ui.label().classes("text-xs text-grey-7 -mt-2").mark("prose-length-hint")
            hint.bind_text_from(self.length, "value", backward=length_hint)
            self.title = ui.input("Title (optional)").props("outlined dense maxlength=200").classes("w-full")
            self.title.mark("prose-title-input")
            self._resource_picker(ready)
            self.write = ui.button("Write", icon="edit_note", on_click=self.submit).classes("w-full")
            self.write.props("unelevated no-caps").mark("prose-write")
            self.problem = ui.label("").classes("text-negative text-sm break-words").props('role="alert"')
            self.problem.mark("prose-problem")
            self.problem.visible = False

    def _resource_picker(self, ready: list[ResourceRead]) -> None:
        if self._rag is None:
            return
        if not ready:
            with ui.element("div").classes("text-sm text-grey-7").mark("prose-no-resources"):
                ui.html("To ground a text in your documents, add them on ", sanitize=False, tag="span")
                ui.link("Resources", "/resources").mark("prose-resources-link")
                ui.html(" first.", sanitize=False, tag="span")
            return
        options = {resource.id: resource.title for resource in ready}
        self.resources = ui.select(options, multiple=True, label="Ground it in your resources (optional)",
                                   with_input=True)  # fmt: skip
        self.resources.props("outlined dense use-chips options-dense behavior=menu").classes("w-full")
        self.resources.props('hint="The text then cites them as [1], [2], …"').mark("prose-resources")

    def fill(self, params: Mapping[str, Any]) -> None:
        """Show what a text was asked with (opened from a link: change it and write again)."""
        self.prompt.set_value(str(params.get("prompt") or ""))
        if params.get("style") in STYLES:
            self.style.set_value(params["style"])
        if params.get("length") in LENGTHS:
            self.length.set_value(params["length"])
        self.title.set_value(str(params.get("title") or ""))
        if self.resources is not None:
            chosen = [i for i in params.get("rag_resource_ids") or [] if i in self.resources.options]
            self.resources.set_value(chosen)

    def busy(self, running: bool) -> None:
        """While the text on screen is written, Write waits (one text at a time, one charge at a time)."""
        self._busy = running
        self.write.set_enabled(not running)
        self.write.set_text("Writing…" if running else "Write")

    def say(self, text: str | None) -> None:
        self.problem.set_text(text or "")
        self.problem.visible = bool(text)

    def request(self) -> ProseRequest | None:
        """The request the form describes, or None after saying what is missing."""
        prompt = (self.prompt.value or "").strip()
        if not prompt:
            self.say("Say what to write about.")
            return None
        chosen = list(self.resources.value or []) if self.resources is not None else []
        try:
            return ProseRequest(prompt=prompt, style=self.style.value, length=self.length.value,
                                title=(self.title.value or "").strip() or None,
                                rag_resource_ids=chosen or None)  # fmt: skip
        except ValidationError as exc:
            self.say(request_problem(exc))
            return None

    async def submit(self) -> None:
        if self._busy or not self.write.enabled:  # a double press, or a text still being written
            return
        request = self.request()
        if request is None:
            return
        self.say(None)
        self.write.disable()
        self.write.props("loading")
        try:
            run_id = await self._prose.start(self._principal, request)
        except DomainError as exc:
            self.say(f"Not written: {problem(exc.code, exc.message)}")
            return
        finally:
            self.write.props(remove="loading")
            self.write.set_enabled(not self._busy)
        await self._on_started(run_id)


# -- the text --------------------------------------------------------------------------------------------------------


class ProseView:
    """The text in the URL: streamed while it is written (with Stop), then with Copy, Download .md and its
    sources; a plain "not found" for an id that is not the user's."""

    def __init__(self, *, runs: RunService, principal: Principal, passages: PassagePanel | None,
                 on_ended: Callable[[], Awaitable[None]], on_running: Callable[[bool], None]) -> None:  # fmt: skip
        self._runs = runs
        self._principal = principal
        self._passages = passages
        self._on_ended = on_ended
        self._on_running = on_running
        self.run_id: str | None = None
        self.writing = Writing()
        self.params: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._shown = 0  # characters of the text on the page
        self._chipped: tuple[int, ...] = ()
        self.markdown: ChatMarkdown | None = None
        with ui.column().classes("prose-main w-full gap-4").mark("prose-main") as self.root:
            self.body = ui.column().classes("w-full gap-4")
            # Outside the body (which is redrawn), so a flush never deletes the timer that runs it.
            self.timer = ui.timer(FLUSH_S, self._flush, active=False)
        self.client = ui.context.client
        self.client.on_delete(self._client_gone)

    async def show(self, run_id: str | None) -> Run | None:
        """Show that run's text (following it while it is written); the run, or None when there is none to show."""
        self._stop_following()
        self._on_running(False)
        self.run_id, self.writing, self._shown, self._chipped, self.markdown = run_id, Writing(), 0, (), None
        self.body.clear()
        if run_id is None:
            self._empty()
            return None
        try:
            run = await self._runs.get(self._principal, run_id, kinds=KINDS)
        except DomainError:  # not found, not yours, or a key without the scope: all read alike
            self._not_found()
            return None
        self.params = dict(run.params or {})
        self._document(live=run.status in ACTIVE)
        self._task = background_tasks.create(self._follow(run_id), name=f"prose-{run_id}", context=self.client)
        return run

    def reveal(self) -> None:
        """Bring the text into view (on a phone it sits above the form whose button started it)."""
        ui.run_javascript(f"getHtmlElement({self.root.id})?.scrollIntoView({{block: 'start', behavior: 'smooth'}})")

    def _stop_following(self) -> None:
        """Another text is shown: stop reading this one (the run itself goes on)."""
        self.timer.deactivate()
        self._client_gone()

    def _client_gone(self) -> None:
        """The browser left for good: nothing left to draw on (the run goes on; a reload follows it again)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    def _empty(self) -> None:
        with self.body, ui.card().classes("prose-empty w-full items-center gap-2 py-10").mark("prose-empty"):
            ui.icon("article", size="xl").classes("text-grey-5")
            ui.label("Your text appears here").classes("text-lg text-grey-8")
            ui.label("Say what to write, pick a style and a length, then press Write.").classes(
                "text-grey-7 text-center"
            )

    def _not_found(self) -> None:
        with self.body, ui.card().classes("prose-missing w-full gap-1").mark("prose-not-found"):
            ui.label("Text not found").classes("text-lg font-medium")
            ui.label("There is no text of yours with this link.").classes("text-grey-7")

    def _document(self, *, live: bool) -> None:
        with self.body, ui.card().classes("prose-doc w-full gap-3").mark("prose-doc") as self.card:
            with ui.row().classes("prose-bar w-full items-center gap-x-3"):
                with ui.row().classes("items-center no-wrap gap-2 grow min-w-0"):
                    self.spinner = ui.spinner("dots", size="1.5em", color="primary")
                    self.icon = ui.icon("check_circle", size="1.25em").props('aria-hidden="true"')
                    self.state = ui.label("Writing…").classes("font-medium").mark("prose-state")
                    self.state.props('role="status"')
                    ui.label(self._kind()).classes("prose-kind text-sm text-grey-7 ellipsis").mark("prose-kind")
                    self.words = ui.label("").classes("prose-words text-sm text-grey-7 whitespace-nowrap")
                    self.words.mark("prose-words")
                with ui.row().classes("prose-actions items-center no-wrap gap-1 ml-auto"):
                    self.stop_button = ui.button("Stop", icon="stop_circle", on_click=self.stop)
                    self.stop_button.props("outline no-caps dense color=negative").classes("px-2").mark("prose-stop")
                    self.copy_button = ui.button("Copy", icon="content_copy").props("flat no-caps dense")
                    self.copy_button.classes("px-2").mark("prose-copy")
                    self.download = ui.button("Download .md", icon="download").props("flat no-caps dense")
                    self.download.classes("px-2").mark("prose-download")
            with ui.column().classes("w-full gap-2 max-w-[46rem]") as self.skeleton:
                for width in ("60%", "100%", "95%", "80%"):
                    ui.skeleton("text").style(f"width: {width}")
            self.text_box = ui.element("div").classes("prose-text w-full")
            self.text_box.on("click", lambda e: self.open_cited(e.args), js_handler=CITE_CLICK)
            self.chips = ui.element("div").classes("w-full")
            self.note = ui.label("").classes("prose-note text-grey-8 break-words").mark("prose-note")
        self.copy_button.visible = self.download.visible = self.note.visible = False
        self._live(live)

    def _live(self, live: bool) -> None:
        """While it is written: the caret, the spinner and Stop; the form waits."""
        if live:
            self.card.classes(add="prose-live")
        else:
            self.card.classes(remove="prose-live")
        self.spinner.visible = self.stop_button.visible = live
        self.icon.visible = not live
        self.timer.active = live
        self._on_running(live)

    def _kind(self) -> str:
        style = STYLES.get(str(self.params.get("style") or "article"), "Text")
        length = LENGTHS.get(str(self.params.get("length") or "medium"), "")
        return f"{style} · {length}" if length else style

    def _count(self) -> None:
        count = word_count(self.writing.text)
        self.words.set_text(words_text(count) if count else "")

    async def _follow(self, run_id: str) -> None:
        try:
            while True:
                async for batch in await self._runs.follow(self._principal, run_id, self.writing.last_id,
                                                           kinds=KINDS):  # fmt: skip
                    for event in batch:
                        self.writing.apply(event)
                if self.writing.ended:
                    break
                # The events ended without an end: the run is live elsewhere (or ended without one).
                run = await self._runs.get(self._principal, run_id, kinds=KINDS)
                if run.status not in ACTIVE:
                    if run.status != "done" and not self.writing.ended:
                        self.writing.error = (run.error_code or "error", run.error_message or "it stopped")
                    break
                await asyncio.sleep(RETRY_S)
        except asyncio.CancelledError:
            raise  # another text is shown, or the page is gone: nothing left to draw on
        except NotFoundError:
            self.writing.error = ("gone", "this text was deleted")
        except DomainError as exc:
            self.writing.error = (exc.code, exc.message)
        except Exception:  # the page says so rather than staying on "Writing…"
            log.exception("following prose run %s failed", run_id)
            self.writing.error = ("internal", "the text could not be followed: reload the page to try again")
        if self.run_id != run_id:
            return
        self._finish()
        await self._on_ended()

    def _flush(self) -> None:
        """The text written since the last flush reaches the page (and the sources it cites so far)."""
        writing = self.writing
        if len(writing.text) == self._shown:
            return
        self._shown = len(writing.text)
        labels = {n: source.label for n, source in writing.sources.items()}
        if self.markdown is None:
            self.skeleton.delete()
            with self.text_box:
                self.markdown = ChatMarkdown(writing.text, citations=labels).classes("prose-md").mark("prose-text")
        else:
            self.markdown.set_citations(labels)
            self.markdown.set_content(writing.text)
        self._count()
        self._chips()

    def _chips(self) -> None:
        """The sources the text cites (all of them given, when it cites none), redrawn only when that set changes."""
        sources = self.writing.sources
        shown = cited(self.writing.text, sources)
        heading = "Sources"
        if not shown and not self.timer.active:  # ended without citing: still say what it was written from
            shown, heading = [sources[n] for n in sorted(sources)], "Written from"
        numbers = tuple(source.n for source in shown)
        if numbers == self._chipped:
            return
        self._chipped = numbers
        self.chips.clear()
        if shown:
            with self.chips:
                ui.label(heading).classes("text-sm font-medium text-grey-8 mb-1").mark("prose-sources-heading")
                source_chips(shown, self.open_source)

    def _finish(self) -> None:
        """The run ended: the whole text, how it ended, and what can be done with it."""
        writing = self.writing
        self._flush()  # its last words, while the window still follows them
        self._live(False)
        self._chips()
        if self.markdown is None:  # nothing was written
            self.skeleton.delete()
        text = writing.text.strip()
        if writing.error is not None:
            self._state("Failed" if writing.error[0] != "interrupted" else "Interrupted", "error", "negative")
            kept = " What was written until then is shown." if text else ""
            self._say(f"{problem(*writing.error)}{kept}", negative=True)
        elif writing.finish_reason == "cancelled":
            self._state("Stopped", "stop_circle", "grey-7")
            self._say(finish_note("cancelled") if text else "Stopped before anything was written.")
        elif writing.finish_reason == "length":
            self._state("Cut short", "content_cut", "orange-9")
            self._say(finish_note("length"))
        else:
            self._state("Done", "check_circle", "positive")
        self._count()
        if text:
            self.copy_button.visible = True
            self.copy_button.on("click", js_handler=f"() => window.agentChat.copy({json.dumps(text)})")
        if writing.artifact is not None:
            self.download.visible = True
            self.download.props["href"] = str(writing.artifact.get("url") or "")
            self.download.props["download"] = ""
            self.download.update()

    def _state(self, text: str, icon: str, color: str) -> None:
        self.state.set_text(text)
        self.icon.props(f"name={icon} color={color}")

    def _say(self, text: str | None, *, negative: bool = False) -> None:
        self.note.set_text(text or "")
        self.note.classes(replace="prose-note break-words " + ("text-negative" if negative else "text-grey-8"))
        if negative:
            self.note.props('role="alert"')
        else:
            self.note.props(remove="role")
        self.note.visible = bool(text)

    async def stop(self) -> None:
        """Stop writing: what was written is kept (and saved)."""
        if self.run_id is None or not self.stop_button.enabled:
            return
        self.stop_button.disable()
        try:
            await self._runs.request_stop(self._principal, self.run_id, kinds=KINDS)
        except ConflictError:
            pass  # it ended meanwhile: the events say how
        except DomainError as exc:
            ui.notify(f"Not stopped: {exc.message}", type="negative")
            self.stop_button.enable()

    async def open_cited(self, n: object) -> None:
        source = self.writing.sources.get(n if isinstance(n, int) else -1)
        if source is not None:
            await self.open_source(source)

    async def open_source(self, source: Source) -> None:
        if self._passages is None:
            ui.notify("Resources are turned off on this instance.", type="info")
            return
        await self._passages.open(source.resource_id, source.chunk_id)


class RecentTexts:
    """The user's texts, newest first: title, status and when; a link opens one."""

    def __init__(self, prose: ProseService, principal: Principal, current: str | None, *, path: str) -> None:
        self._prose = prose
        self._principal = principal
        self._path = path
        self.current = current
        with ui.card().classes("prose-recent w-full gap-2").mark("recent-texts"):
            ui.label("Your texts").classes("text-lg font-medium").props('role="heading" aria-level="2"')
            self.body = ui.column().classes("w-full gap-1")

    async def refresh(self) -> None:
        try:
            found = await self._prose.recent(self._principal, limit=10)
        except DomainError:
            found = []
        self.body.clear()
        with self.body:
            if not found:
                ui.label("None yet.").classes("text-grey-7").mark("no-texts")
            for run in found:
                current = run.id == self.current
                link = ui.link(target=f"{self._path}?run={run.id}").classes(
                    "prose-recent-item row items-center no-wrap gap-2 px-2 py-1 w-full"
                    + (" prose-recent-item--current" if current else "")
                )
                if current:
                    link.props('aria-current="page"')
                with link.mark("recent-text", f"recent-{run.id}"):
                    with ui.column().classes("gap-0 grow min-w-0"):
                        ui.label(run_title(run)).classes("ellipsis w-full").mark("recent-title")
                        ui.label(f"{run.created_at:%-d %b %Y %H:%M} UTC").classes("text-xs text-grey-7")
                    ui.badge(STATUS_TEXT.get(run.status, run.status),
                             color=STATUS_COLORS.get(run.status, "grey")).mark("recent-status")  # fmt: skip
