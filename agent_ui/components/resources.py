"""Resources in the browser: add files (dropped several at once), web pages and pasted text; follow each one's
ingestion; search them and open the passage a hit (or a chat citation) points at.

Text from documents is never trusted as HTML: snippets and passages are escaped here and only our own ``<mark>``
tags are added around the offsets the service gives."""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import Awaitable, Callable, Sequence

from nicegui import events, ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.confirm import confirm, submit_on_enter
from services.auth import Principal
from services.errors import DomainError, NotFoundError
from services.jobs import JobRead, JobService
from services.rag import RagService
from services.rag.documents import CSV, DOCX, HTML, MARKDOWN, PDF, PLAIN
from services.rag.schemas import Passage, ResourceCreate, ResourceRead, SearchHit, SearchRequest
from services.rag.service import Upload

STATUS_COLORS = {"processing": "warning", "ready": "positive", "failed": "negative"}
STATUS_TEXT = {"processing": "processing", "ready": "ready", "failed": "failed"}
KINDS = {PDF: "PDF", DOCX: "Word", HTML: "Web page", MARKDOWN: "Markdown", CSV: "CSV", PLAIN: "Text"}
SOURCE_ICONS = {"file": "description", "url": "language", "text": "notes"}
# Where each stage of an ingestion sits on one bar (the stages report their own done/total).
STAGE_SPANS = {"fetching": (0.0, 0.1), "extracting": (0.1, 0.4), "embedding": (0.4, 0.95), "indexing": (0.95, 1.0)}
STAGE_TEXT = {"queued": "Waiting for a free worker", "fetching": "Fetching the page", "extracting": "Reading",
              "embedding": "Embedding", "indexing": "Saving the index"}  # fmt: skip
STAGE_UNITS = {"extracting": "pages", "embedding": "chunks"}
SEARCH_MODES = {"hybrid": "Best match", "keyword": "Exact words", "vector": "Similar meaning"}
MAX_FILENAME = 255
POLL_S = 0.5
SUPPORTED = "PDF, Word (.docx), HTML, Markdown, CSV or plain text"
ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.csv,.txt,.text,text/*,application/pdf"


# -- pure helpers (tested on their own) ------------------------------------------------------------------------------


def highlighted(text: str, marks: Sequence[Sequence[int]]) -> str:
    """``text`` as safe HTML with each ``[start, end)`` of ``marks`` in ``<mark>``: everything else is escaped, so
    a document's own markup shows as text. Marks out of range or overlapping an earlier one are clamped or dropped."""
    pieces: list[str] = []
    at = 0
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in marks):
        if end <= start or start < at:
            continue
        pieces += [html.escape(text[at:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        at = end
    pieces.append(html.escape(text[at:]))
    return "".join(pieces)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def describe(resource: ResourceRead) -> str:
    """What a row says under the title: kind, pages, chunks, size and when it was added."""
    parts = [KINDS.get(resource.media_type or "", "Web page" if resource.source == "url" else "Document")]
    if resource.source == "text":
        parts[0] = "Pasted text"
    if resource.pages:
        parts.append(f"{resource.pages} page{'s' if resource.pages != 1 else ''}")
    if resource.status == "ready":
        parts.append(f"{resource.chunk_count} chunk{'s' if resource.chunk_count != 1 else ''}")
    if resource.size:
        parts.append(human_size(resource.size))
    parts.append(f"added {resource.created_at:%-d %b %Y %H:%M} UTC")
    return " · ".join(parts)


def overall_fraction(job: JobRead | None) -> float | None:
    """How much of the whole ingestion is done, from its stage and the stage's own share; None while it waits."""
    if job is None or job.progress is None:
        return None
    span = STAGE_SPANS.get(job.progress.stage)
    if span is None:
        return job.fraction
    low, high = span
    return low + (high - low) * (job.fraction or 0.0)


def describe_progress(job: JobRead | None) -> str:
    if job is None or job.progress is None:
        return "Waiting to start"
    progress = job.progress
    text = STAGE_TEXT.get(progress.stage, progress.stage.capitalize())
    if progress.done is not None and progress.total:
        unit = STAGE_UNITS.get(progress.stage, "")
        text += f" · {progress.done:g} of {progress.total:g} {unit}".rstrip()
    return text


def position_text(page: int | None, heading: str | None, pages: int | None = None) -> str:
    parts = []
    if page is not None:
        parts.append(f"page {page}" + (f" of {pages}" if pages else ""))
    if heading:
        parts.append(heading)
    return " · ".join(parts)


def problem(subject: str, exc: DomainError) -> str:
    """A refusal as one plain sentence about ``subject`` (a file name, "That address", …)."""
    if exc.code == "unsupported_media_type":
        return f"{subject} was not added: {exc.message}. Add {SUPPORTED}."
    if exc.code == "payload_too_large":
        return f"{subject} is too large: {exc.message}."
    if exc.code == "url_not_allowed":
        return f"{subject} cannot be fetched: {exc.message}."
    if exc.code == "insufficient_credits":
        return f"Not enough credits to add {subject}: {exc.message}."
    return f"{subject} was not added: {exc.message}."


def too_large(name: str, size: int, limit: int) -> str:
    return f"{name} is too large: {human_size(size)}, and files are limited to {human_size(limit)}."


# -- the parts of the page -------------------------------------------------------------------------------------------


def disabled_notice() -> None:
    with ui.card().classes("w-full"):
        ui.label("Resources are turned off on this instance.").classes("text-lg").mark("resources-off")
        ui.label("An admin turns them on with AGENT_UI_RAG__ENABLED=true.").classes("text-grey-7")


class AddResources:
    """Files dropped or chosen (several at once, each uploaded and queued for ingestion), a web page by its
    address, or pasted text. ``on_added`` runs after each resource is created, so the list shows it at once."""

    def __init__(self, rag: RagService, principal: Principal, *, max_upload_bytes: int,
                 on_added: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
        self._rag = rag
        self._principal = principal
        self._max = max_upload_bytes
        self._on_added = on_added
        with ui.card().classes("resources-add w-full gap-3").mark("add-resources"):
            ui.label("Add resources").classes("text-lg font-medium")
            ui.label(f"{SUPPORTED}, up to {human_size(max_upload_bytes)} each. The agent searches them when you "
                     "ground a chat in them.").classes("text-sm text-grey-7")  # fmt: skip
            self.upload = ui.upload(
                label="Drop files here, or press + to choose them",
                multiple=True,
                auto_upload=True,
                max_file_size=max_upload_bytes,
                on_upload=self._uploaded,
                on_multi_upload=lambda: self.upload.reset(),
            )
            self.upload.props(f'flat bordered accept="{ACCEPT}"')
            # The browser refuses a file by its name or size before sending it: say which and why.
            self.upload.on("rejected", self._rejected, js_handler=(
                "(entries) => emit(entries.map(e => [e.failedPropValidation, e.file.name, e.file.size]))"
            ))  # fmt: skip
            self.upload.classes("w-full resources-upload").mark("upload")
            with ui.row().classes("w-full items-center gap-2"):
                self.url = ui.input(label="Web page address", placeholder="https://example.com/article")
                self.url.props("outlined dense type=url inputmode=url").classes("grow min-w-[12rem]").mark("add-url")
                self.url.on("keydown.enter", self.add_url)
                self.url_button = ui.button("Add page", icon="link", on_click=self.add_url).mark("add-url-button")
                ui.button("Paste text", icon="content_paste", on_click=self._open_paste).props("outline").mark(
                    "paste-open"
                )
        self._paste_dialog()

    def _rejected(self, event: events.GenericEventArguments) -> None:
        for check, name, size in event.args:
            if check == "max-file-size":
                ui.notify(too_large(str(name), int(size), self._max), type="negative")
            else:
                ui.notify(f"{name} was not added: add {SUPPORTED}.", type="negative")

    async def _uploaded(self, event: events.UploadEventArguments) -> None:
        file = event.file
        name = (file.name or "upload")[:MAX_FILENAME]
        size = file.size()
        if size > self._max:  # the browser checks too, but a request can skip the browser
            ui.notify(too_large(name, size, self._max), type="negative")
            return
        try:
            data = await file.read()
            await self._rag.upload(self._principal, Upload(filename=name, data=data,
                                                           declared_type=file.content_type or None))  # fmt: skip
        except DomainError as exc:
            ui.notify(problem(name, exc), type="negative", multi_line=True)
            return
        await self._on_added()

    async def add_url(self) -> None:
        address = (self.url.value or "").strip()
        if not address:
            return
        try:
            request = ResourceCreate(url=address)  # type: ignore[arg-type]  # pydantic parses the string
        except ValidationError:
            ui.notify("Enter a full web address, starting with http:// or https://.", type="warning")
            return
        self.url_button.disable()
        try:
            await self._rag.create(self._principal, request)
        except DomainError as exc:
            ui.notify(problem(address, exc), type="negative", multi_line=True)
            return
        finally:
            self.url_button.enable()
        self.url.set_value("")
        await self._on_added()

    def _paste_dialog(self) -> None:
        with ui.dialog() as self.paste, ui.card().classes("w-[40rem] max-w-full gap-2") as card:
            ui.label("Paste text").classes("text-lg font-medium")
            self.paste_title = ui.input("Title (optional)").props("outlined dense").classes("w-full")
            self.paste_title.mark("paste-title")
            self.paste_text = ui.textarea("Text").props("outlined autofocus input-class=min-h-[12rem]")
            self.paste_text.classes("w-full").mark("paste-text")
            with ui.row().classes("justify-end w-full"):
                ui.button("Cancel", on_click=self.paste.close).props("flat")
                self.paste_button = ui.button("Add text", icon="add", on_click=self.add_text).mark("paste-add")
        submit_on_enter(card, self.add_text, focus=False)

    def _open_paste(self) -> None:
        self.paste.open()

    async def add_text(self) -> None:
        text = self.paste_text.value or ""
        title = (self.paste_title.value or "").strip() or None
        try:
            request = ResourceCreate(text=text, title=title)
        except ValidationError:
            ui.notify("Paste some text first (at most 2,000,000 characters; a title of at most 200).",
                      type="warning")  # fmt: skip
            return
        self.paste_button.disable()
        try:
            await self._rag.create(self._principal, request)
        except DomainError as exc:
            ui.notify(problem("The text", exc), type="negative", multi_line=True)
            return
        finally:
            self.paste_button.enable()
        self.paste.close()
        self.paste_text.set_value("")
        self.paste_title.set_value("")
        await self._on_added()


class ResourceRow:
    """One resource: what it is, its status (the ingestion's progress while it runs, the reason when it failed) and
    its actions. ``show`` updates it in place, so a poll does not rebuild the list."""

    def __init__(self, resource: ResourceRead, *, on_delete: Callable[[ResourceRead], object],
                 on_reingest: Callable[[ResourceRead], Awaitable[None]]) -> None:  # fmt: skip
        self.resource = resource
        card = ui.card().classes("resources-row w-full px-3 py-2").mark("resource-row", f"resource-{resource.id}")
        with card, ui.row().classes("items-start w-full gap-3 no-wrap"):
            self.icon = ui.icon(SOURCE_ICONS.get(resource.source, "description"), size="sm")
            self.icon.classes("text-primary mt-1")
            with ui.column().classes("gap-1 grow min-w-0"):
                with ui.row().classes("items-center gap-2 w-full no-wrap"):
                    self.title = ui.label(resource.title).classes("font-medium truncate min-w-0").mark("resource-title")
                    self.title.tooltip(resource.url or resource.filename or resource.title)
                    self.status = ui.badge("").mark("resource-status")
                self.meta = ui.label("").classes("text-xs text-grey-7").mark("resource-meta")
                with ui.column().classes("w-full gap-0") as self.progress_box:
                    self.progress = ui.linear_progress(0, show_value=False, size="6px").classes("rounded")
                    named(self.progress, f"Indexing {resource.title}").mark("resource-progress")
                    self.stage = ui.label("").classes("text-xs text-grey-7").mark("resource-stage")
                self.reason = ui.label("").classes("text-sm text-negative break-words").mark("resource-reason")
            with ui.row().classes("items-center gap-0 no-wrap"):
                self.reingest = ui.button(icon="refresh", on_click=lambda: on_reingest(self.resource))
                named(self.reingest, f"Index {resource.title} again").props("flat round dense")
                self.reingest.tooltip("Index again").mark("resource-reingest", f"reingest-{resource.id}")
                delete = ui.button(icon="delete", on_click=lambda: on_delete(self.resource))
                named(delete, f"Delete {resource.title}").props("flat round dense color=negative")
                delete.tooltip("Delete").mark("resource-delete", f"delete-{resource.id}")

    def show(self, resource: ResourceRead, job: JobRead | None) -> None:
        self.resource = resource
        self.title.set_text(resource.title)
        self.status.set_text(STATUS_TEXT.get(resource.status, resource.status))
        self.status.props(f"color={STATUS_COLORS.get(resource.status, 'grey')}")
        self.meta.set_text(describe(resource))
        processing = resource.status == "processing"
        self.progress_box.set_visibility(processing)
        if processing:
            fraction = overall_fraction(job)
            if fraction is None:
                self.progress.props("indeterminate")
            else:
                self.progress.props(remove="indeterminate")
                self.progress.set_value(round(fraction, 3))
            self.stage.set_text(describe_progress(job))
        failed = resource.status == "failed"
        self.reason.set_visibility(failed)
        self.reason.set_text((resource.reason or "ingestion failed") if failed else "")
        self.reingest.set_visibility(failed)


class ResourceList:
    """The user's resources, newest first. While any is processing, a timer reads them again (and each one's
    ingestion job for its progress); it stops once none is."""

    def __init__(self, rag: RagService, jobs: JobService, principal: Principal) -> None:
        self._rag = rag
        self._jobs = jobs
        self._principal = principal
        self._rows: dict[str, ResourceRow] = {}
        self._order: list[str] | None = None  # none shown yet
        self._lock = asyncio.Lock()
        with ui.column().classes("resources-list w-full gap-2").mark("resources") as self.root:
            with ui.row().classes("items-baseline gap-2"):
                ui.label("Your resources").classes("text-lg font-medium")
                self.count = ui.label("").classes("text-sm text-grey-7").mark("resource-count")
            self.body = ui.column().classes("w-full gap-2")
            self.timer = ui.timer(POLL_S, self.refresh, active=False)

    @property
    def processing(self) -> bool:
        return any(row.resource.status == "processing" for row in self._rows.values())

    async def refresh(self) -> None:
        async with self._lock:
            try:
                found = await self._rag.list_resources(self._principal)
            except DomainError as exc:
                self.timer.deactivate()
                ui.notify(exc.message, type="negative")
                return
            jobs: dict[str, JobRead] = {}
            for resource in found:
                if resource.status == "processing" and resource.job_id is not None:
                    with contextlib.suppress(NotFoundError):  # deleted meanwhile: the next read says so
                        jobs[resource.id] = await self._jobs.get(self._principal, resource.job_id, family="rag")
            if [r.id for r in found] != self._order:
                self._rebuild(found)
            for resource in found:
                self._rows[resource.id].show(resource, jobs.get(resource.id))
            self.count.set_text(f"({len(found)})" if found else "")
            self.timer.active = any(r.status == "processing" for r in found)

    def _rebuild(self, found: list[ResourceRead]) -> None:
        self.body.clear()
        self._rows = {}
        self._order = [resource.id for resource in found]
        with self.body:
            if not found:
                ui.label("Nothing here yet: add a file, a web page or some text above.").classes("text-grey-7").mark(
                    "no-resources"
                )
            for resource in found:
                self._rows[resource.id] = ResourceRow(resource, on_delete=self.ask_delete, on_reingest=self.reingest)

    def ask_delete(self, resource: ResourceRead) -> None:
        async def delete() -> None:
            await self._rag.delete(self._principal, resource.id)
            await self.refresh()

        with self.root:  # the dialog outlives the row it was asked from
            confirm(f"Delete “{resource.title}”? Its text leaves search at once and the original file is removed.",
                    action_label="Delete", marker="confirm-delete", action=delete,
                    then=self.timer.activate)  # fmt: skip

    async def reingest(self, resource: ResourceRead) -> None:
        try:
            await self._rag.reingest(self._principal, resource.id)
        except DomainError as exc:
            ui.notify(problem(f"“{resource.title}”", exc), type="negative")
            return
        ui.notify(f"Indexing “{resource.title}” again", type="info")
        await self.refresh()


class PassagePanel:
    """The passage a hit or a citation points at: its page (PDF) or section, the hit's own span marked and
    scrolled into view, in a panel on the right (the whole width on a phone)."""

    def __init__(self, rag: RagService, principal: Principal) -> None:
        self._rag = rag
        self._principal = principal
        with ui.dialog().props("position=right full-height") as self.dialog, ui.card() as card:
            card.classes("resources-passage h-full no-wrap gap-2").mark("passage")
            with ui.row().classes("items-start w-full gap-2 no-wrap"):
                with ui.column().classes("gap-0 grow min-w-0"):
                    self.title = ui.label("").classes("text-lg font-medium break-words").mark("passage-title")
                    self.where = ui.label("").classes("text-sm text-grey-7").mark("passage-where")
                close = ui.button(icon="close", on_click=self.dialog.close).props("flat round dense")
                named(close, "Close the passage").tooltip("Close").mark("passage-close")
            self.text = ui.html("", sanitize=True).classes("resources-passage-text w-full grow overflow-auto")
            self.text.mark("passage-text")
        # Once the panel is open, bring the marked span into view (in the browser: no round trip).
        self.dialog.on("show", js_handler=(f"() => getHtmlElement({self.text.id})?.querySelector('mark')"
                                           "?.scrollIntoView({block: 'center'})"))  # fmt: skip

    async def open(self, resource_id: str, chunk_id: str) -> Passage | None:
        try:
            passage = await self._rag.passage(self._principal, resource_id, chunk_id)
        except DomainError as exc:
            ui.notify(f"The passage cannot be shown: {exc.message}.", type="negative")
            return None
        self.title.set_text(passage.title)
        self.where.set_text(position_text(passage.page, passage.heading, passage.pages))
        self.text.set_content(highlighted(passage.text, [passage.highlight]))
        self.dialog.open()
        return passage


class ResourceSearch:
    """A search over the user's ready resources: each hit's title, where it is, its snippet with the matching words
    marked and its score; a hit opens its passage."""

    def __init__(self, rag: RagService, principal: Principal, passages: PassagePanel) -> None:
        self._rag = rag
        self._principal = principal
        self._passages = passages
        with ui.card().classes("resources-search w-full gap-2").mark("search"):
            with ui.row().classes("w-full items-center gap-2"):
                self.query = ui.input(placeholder="Search your resources").props("outlined dense clearable type=search")
                named(self.query, "Search your resources").classes("grow min-w-[14rem]").mark("search-query")
                self.query.on("keydown.enter", self.search)
                self.mode = ui.select(SEARCH_MODES, value="hybrid").props("outlined dense options-dense")
                named(self.mode, "How to match").classes("w-36").mark("search-mode")
                search = named(ui.button(icon="search", on_click=self.search), "Search").props("unelevated round")
                search.tooltip("Search").mark("search-button")
            self.results = ui.column().classes("w-full gap-2").mark("search-results")

    async def search(self) -> None:
        query = (self.query.value or "").strip()
        if not query:
            return
        try:
            request = SearchRequest(query=query, k=10, mode=self.mode.value)
        except ValidationError:
            ui.notify("Search for at most 2,000 characters.", type="warning")
            return
        try:
            found = await self._rag.search(self._principal, request)
        except DomainError as exc:
            ui.notify(f"The search failed: {exc.message}.", type="negative")
            return
        self.results.clear()
        with self.results:
            if not found.hits:
                ui.label("Nothing found in your ready resources.").classes("text-grey-7").mark("no-hits")
                return
            for hit in found.hits:
                self._hit(hit)

    def _hit(self, hit: SearchHit) -> None:
        item = ui.item(on_click=lambda: self._passages.open(hit.resource_id, hit.chunk_id))
        item.classes("w-full rounded-borders resources-hit px-3 py-2").mark("search-hit", f"hit-{hit.chunk_id}")
        with item, ui.item_section().classes("gap-1"):
            with ui.row().classes("items-baseline w-full gap-x-2 gap-y-0"):
                ui.label(hit.title).classes("font-medium break-words min-w-0").mark("hit-title")
                if where := position_text(hit.position.page, hit.position.heading):
                    ui.label(where).classes("text-xs text-grey-7 min-w-0 break-words").mark("hit-where")
                ui.space()
                ui.label(f"score {hit.score:.3g}").classes("text-xs text-grey-7").mark("hit-score")
            ui.html(highlighted(hit.snippet, hit.marks), sanitize=True).classes("text-sm resources-snippet").mark(
                "hit-snippet"
            )


RESOURCES_CSS = """
.resources-hit { border: 1px solid rgba(0, 0, 0, 0.12); cursor: pointer; }
.body--dark .resources-hit { border-color: rgba(255, 255, 255, 0.18); }
.resources-snippet { overflow-wrap: anywhere; }
.resources-passage-text { white-space: pre-wrap; overflow-wrap: anywhere; }
.resources-snippet mark { background: #ffe08a; color: #1a1a1a; border-radius: 2px; }
.resources-passage-text mark { background: #fff1c2; color: #1a1a1a; box-shadow: -6px 0 0 #f0b400; }
.body--dark .resources-passage-text mark { background: #4a3f1a; color: #f5f5f5; }
.resources-passage { width: min(44rem, 100vw); max-width: 100vw !important; border-radius: 0 !important; }
.q-dialog__inner:has(> .resources-passage) { padding: 0 !important; }
.resources-passage-text { line-height: 1.6; }
.resources-upload { max-width: none; }
.resources-upload .q-uploader__list { min-height: 0; padding: 0; }
.resources-upload .q-uploader__subtitle { display: none; } /* "0.0B / 0.00%": each row shows its own progress */
.resources-upload .q-uploader__list:not(:empty) { padding: 8px; }
/* Side by side where the page is wide enough (adding and the list on the left, search on the right), else stacked:
   adding, search, the list. */
.resources-page { container-type: inline-size; width: 100%; }
.resources-grid { display: grid; gap: 1rem; grid-template-columns: minmax(0, 1fr); align-items: start; }
@container (min-width: 56rem) {
  .resources-grid { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); grid-template-rows: auto 1fr; }
  .resources-add { grid-column: 1; grid-row: 1; }
  .resources-list { grid-column: 1; grid-row: 2; }
  .resources-search { grid-column: 2; grid-row: 1 / span 2; }
}
"""


def resources_grid() -> ui.element:
    """The page's body: enter it, then build the adding card, the search and the list, in that order."""
    add_resources_css()
    with ui.element("div").classes("resources-page"):
        return ui.element("div").classes("resources-grid")


def add_resources_css() -> None:
    ui.add_css(RESOURCES_CSS)
