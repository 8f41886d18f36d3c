"""Decks in the browser: the form (what the deck is about, how many slides, a theme or an uploaded template), the
job's progress by stage, then the deck: a grid of 16:9 thumbnails to open, drag or move, and a side panel that
edits one slide (its fields, a rewrite by the model, its versions, delete).

Dragging happens in the browser (``static/slides.js``): a card dropped elsewhere in the grid tells the grid
``slidemove`` with where it came from and where it went, and the server reorders the deck. Every card also has
buttons that move it one place, for the keyboard and for tests. Thumbnails are drawn by LibreOffice in the
background after each change: a card shows a spinner (over the old picture, dimmed) until its new version is
ready, and the page polls the deck meanwhile."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from nicegui import events, ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.confirm import confirm, submit_on_enter
from services.auth import Principal
from services.errors import ConflictError, DomainError, NotFoundError, UnsupportedMediaTypeError
from services.generation import DeckService, thumbnails
from services.generation.decks import KIND
from services.generation.render import THEMES
from services.generation.schemas import (
    ChartData,
    ChartSeries,
    DeckRead,
    DeckRequest,
    RegenerateRequest,
    ReorderRequest,
    SlideCreate,
    SlideEdit,
    SlideRead,
    SlideVersionRead,
    TableData,
)
from services.jobs import JobRead, JobService
from services.rag import RagService
from services.rag.schemas import ResourceRead

log = logging.getLogger(__name__)
T = TypeVar("T")
STATIC = Path(__file__).resolve().parents[1] / "static"
PAGE = "/generate/slides"
FAMILY = "generation"
ACTIVE = frozenset({"queued", "running"})
JOB_POLL_S = 0.5
THUMB_POLL_S = 1.0
THUMB_PATIENCE_S = 180.0  # after this long without a new thumbnail the page stops waiting and says so
MAX_SLIDES = 50
NO_TEMPLATE = ""
SOURCES = {"topic": "Topic", "text": "Text", "resources": "Resources"}
LAYOUTS: dict[str, str] = {"title": "Title", "bullets": "Bullets", "two_columns": "Two columns", "table": "Table",
                           "chart": "Chart", "section": "Section header"}  # fmt: skip
CHART_TYPES = {"column": "Columns", "bar": "Bars", "line": "Line", "pie": "Pie"}
# The job's stages as the user sees them, and where each sits on the one bar.
STEPS = {"outline": "Outline", "slides": "Slides", "rendering": "Rendering", "thumbnails": "Thumbnails"}
STAGE_SPANS = {"sources": (0.0, 0.05), "outline": (0.05, 0.15), "slides": (0.15, 0.8), "rendering": (0.8, 0.86),
               "thumbnails": (0.86, 1.0)}  # fmt: skip
STATUS_TEXT = {"queued": "waiting", "running": "in progress", "done": "ready", "failed": "failed",
               "cancelled": "cancelled", "interrupted": "interrupted"}  # fmt: skip
STATUS_COLORS = {"queued": "grey-7", "running": "warning", "done": "positive", "failed": "negative",
                 "cancelled": "grey-7", "interrupted": "negative"}  # fmt: skip
CAUSES = {"generated": "Generated", "added": "Added", "edited": "Edited", "regenerated": "Rewritten by the model",
          "restored": "Restored"}  # fmt: skip


# -- pure helpers (tested on their own) ------------------------------------------------------------------------------


def overall_fraction(job: JobRead) -> float | None:
    """How much of the whole deck is made, from its stage and the stage's own share; None while it waits."""
    if job.status == "done":
        return 1.0
    progress = job.progress
    if progress is None or progress.stage not in STAGE_SPANS:
        return None
    low, high = STAGE_SPANS[progress.stage]
    return round(low + (high - low) * (job.fraction or 0.0), 3)


def describe_progress(job: JobRead) -> str:
    """What the job is doing, in words: "Planning the slides", "Writing slide 3 of 6", "Drawing the thumbnails"."""
    progress = job.progress
    if job.status == "queued" or progress is None or progress.stage == "queued":
        return "Waiting for a free worker"
    done, total = progress.done, progress.total
    if progress.stage == "sources":
        return "Reading your resources"
    if progress.stage == "outline":
        return "Planning the slides"
    if progress.stage == "slides" and total:
        if done is not None and done >= total:
            return "Every slide written"
        return f"Writing slide {(done or 0) + 1:g} of {total:g}"
    if progress.stage == "rendering":
        return "Making the .pptx"
    if progress.stage == "thumbnails":
        if total == 0:
            return f"No thumbnails: {progress.message}" if progress.message else "No thumbnails"
        return "Drawing the thumbnails"
    return progress.stage.capitalize()


def step_states(job: JobRead) -> dict[str, str]:
    """Each visible stage as ``done``, ``current`` or ``todo`` (reading resources counts as part of the outline)."""
    stage = job.progress.stage if job.progress is not None else "queued"
    stage = "outline" if stage == "sources" else stage
    order = list(STEPS)
    if job.status == "done":
        return dict.fromkeys(order, "done")
    if stage not in order:
        return dict.fromkeys(order, "todo")
    at = order.index(stage)
    return {name: "done" if n < at else "current" if n == at else "todo" for n, name in enumerate(order)}


def job_title(job: JobRead) -> str:
    """What a deck job is called: its title once written, else what it was asked to be about."""
    if job.result and job.result.get("title"):
        return str(job.result["title"])
    params = job.params
    title = params.get("title") or params.get("topic")
    if title:
        return str(title)[:80]
    return "From your text" if params.get("text") else "From your resources"


def lines_of(text: str | None) -> list[str]:
    """A textarea's lines, trimmed, blank ones left out."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("|")]


def table_text(table: TableData | None) -> str:
    """A table as lines of cells split by ``|``, the header first."""
    if table is None:
        return ""
    return "\n".join(" | ".join(row) for row in [table.columns, *table.rows])


def parse_table(text: str) -> TableData | None:
    """The inverse of :func:`table_text`; None for an empty field. Raises RefusedError saying what is wrong."""
    rows = [_cells(line) for line in lines_of(text)]
    if not rows:
        return None
    if len(rows) < 2:
        raise RefusedError("A table needs its header line and at least one row under it.")
    try:
        return TableData(columns=rows[0], rows=rows[1:])
    except ValidationError as exc:
        raise RefusedError("A table has at most 8 columns and 12 rows, each cell at most 120 characters.") from exc


def _number(value: float) -> str:
    return f"{value:g}"


def chart_text(chart: ChartData | None) -> str:
    """A chart as text: the categories on the first line, then a line per series, its name then its values."""
    if chart is None:
        return ""
    lines = [" | ".join(chart.categories)]
    lines += [" | ".join([series.name, *map(_number, series.values)]) for series in chart.series]
    return "\n".join(lines)


def parse_chart(text: str, chart_type: str) -> ChartData | None:
    """The inverse of :func:`chart_text`; None for an empty field. Raises RefusedError saying what is wrong."""
    rows = [_cells(line) for line in lines_of(text)]
    if not rows:
        return None
    if len(rows) < 2:
        raise RefusedError("A chart needs its categories on the first line and at least one series under them.")
    series: list[ChartSeries] = []
    for row in rows[1:]:
        name, values = row[0], row[1:]
        try:
            numbers = [float(value.replace(",", "")) if value else 0.0 for value in values]
        except ValueError as exc:
            raise RefusedError(f"The series “{name}” has a value that is not a number.") from exc
        try:
            series.append(ChartSeries(name=name or "Series", values=numbers or [0.0]))
        except ValidationError as exc:
            raise RefusedError("A series has at most 24 values and a name of at most 120 characters.") from exc
    try:
        return ChartData(type=chart_type, categories=rows[0], series=series)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise RefusedError("A chart has at most 24 categories and 6 series.") from exc


def moved(count: int, source: int, target: int) -> list[int]:
    """The reorder that takes the slide at ``source`` to ``target`` (both from 0), as ``ReorderRequest.order``."""
    order = list(range(count))
    order.insert(max(0, min(target, count - 1)), order.pop(source))
    return order


def edit_problem(exc: ValidationError) -> str:
    """A refused slide as one plain sentence."""
    fields = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
    if "title" in fields:
        return "The title can be at most 200 characters."
    if "subtitle" in fields:
        return "The subtitle can be at most 300 characters."
    if fields & {"bullets", "right"}:
        return "A column holds at most 12 lines, each at most 300 characters."
    if "notes" in fields:
        return "The notes can be at most 4,000 characters."
    return "Check the slide: " + str(exc.errors()[0]["msg"])


def request_problem(exc: ValidationError) -> str:
    """A refused form as one plain sentence."""
    fields = {str(part) for error in exc.errors() for part in error["loc"]}
    if "title" in fields:
        return "The title can be at most 200 characters."
    if "text" in fields:
        return "The text can be at most 50,000 characters."
    if "topic" in fields:
        return "The topic can be at most 2,000 characters."
    if "slide_count" in fields:
        return f"A deck has 1 to {MAX_SLIDES} slides."
    return "Check the form: " + str(exc.errors()[0]["msg"])


def slide_label(slide: SlideRead) -> str:
    return slide.title or LAYOUTS.get(slide.layout, slide.layout)


@cache
def _asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def add_slides_assets() -> None:
    """Inline (the page's policy allows inline code, not other origins), once per page."""
    ui.add_head_html(f"<style>{_asset('slides.css')}</style>\n<script>{_asset('slides.js')}</script>")


def slides_layout() -> ui.element:
    """The page's body: enter it, then build the deck, the form and the list of decks, in that order."""
    with ui.element("div").classes("slides-page"):
        return ui.element("div").classes("slides-layout")


def disabled_notice() -> None:
    with ui.card().classes("w-full").mark("slides-off"):
        ui.label("Decks are turned off on this instance.").classes("text-lg")
        ui.label("An admin turns them on with AGENT_UI_GENERATION__ENABLED=true.").classes("text-grey-7")


async def attempt(call: Awaitable[T], failure: str) -> T | None:
    """Run a service call; a refusal becomes a notification that says what failed and why (None returned)."""
    try:
        return await call
    except DomainError as exc:
        ui.notify(f"{failure}: {exc.message}", type="negative", multi_line=True)
    except Exception:
        log.exception("%s", failure)
        ui.notify(f"{failure}: something went wrong on the server. Try again.", type="negative")
    return None


class RefusedError(ValueError):
    """The form is not complete: the message says what is missing."""


# -- the form --------------------------------------------------------------------------------------------------------


class ThemePicker:
    """The four themes as small slide-shaped swatches in a radio group (a template, when chosen, sets the look
    instead and the swatches are turned off)."""

    def __init__(self, value: str = "light") -> None:
        self.value = value
        self.buttons: dict[str, ui.element] = {}
        with ui.element("div").classes("slides-themes").props('role=radiogroup aria-label="Theme"') as self.root:
            for name, theme in THEMES.items():
                accents = theme.accents[:3]
                with ui.element("button").props("type=button role=radio").classes("slides-theme") as button:
                    button.on("click", lambda n=name: self.choose(n)).mark("deck-theme", f"theme-{name}")
                    swatch = ui.element("span").classes("slides-theme-swatch")
                    swatch.style(f"background: #{theme.background}; color: #{theme.title}")
                    with swatch:
                        ui.element("span").classes("slides-theme-title").style(f"background: #{theme.title}")
                        with ui.element("span").classes("slides-theme-accents"):
                            for accent in accents:
                                ui.element("span").style(f"background: #{accent}")
                    ui.label(theme.label).classes("slides-theme-label")
                self.buttons[name] = button
        self.choose(value)

    def choose(self, name: str) -> None:
        if self.root.props.get("aria-disabled") == "true":
            return
        self.value = name
        for other, button in self.buttons.items():
            chosen = other == name
            button.props["aria-checked"] = "true" if chosen else "false"
            button.classes(add="slides-theme--chosen") if chosen else button.classes(remove="slides-theme--chosen")
            button.update()

    def set_enabled(self, enabled: bool) -> None:
        self.root.props["aria-disabled"] = "false" if enabled else "true"
        self.root.classes(remove="slides-themes--off") if enabled else self.root.classes(add="slides-themes--off")
        for button in self.buttons.values():
            button.props.set_optional("disabled", None if enabled else True)
            button.update()


class TemplateUpload:
    """A dialog that takes a .pptx whose masters and layouts decks then use; a file that is not one is refused
    with the reason, in the dialog and as a notification."""

    def __init__(self, decks: DeckService, principal: Principal, *, max_bytes: int,
                 on_uploaded: Callable[[str], Awaitable[None]]) -> None:  # fmt: skip
        self._decks = decks
        self._principal = principal
        self._max = max_bytes
        self._on_uploaded = on_uploaded
        with ui.dialog() as self.dialog, ui.card().classes("w-[32rem] max-w-full gap-3").mark("template-dialog"):
            ui.label("Upload a template").classes("text-lg font-medium")
            ui.label("A PowerPoint file (.pptx) whose slide masters and layouts your decks will use: its fonts, "
                     "colours and backgrounds.").classes("text-sm text-grey-8")  # fmt: skip
            self.upload = ui.upload(label="Drop a .pptx here, or press + to choose it", auto_upload=True,
                                    max_file_size=max_bytes, on_upload=self._uploaded)  # fmt: skip
            self.upload.props('flat bordered accept=".pptx,.potx"').classes("w-full slides-upload")
            self.upload.mark("template-upload")
            self.upload.on("rejected", self._rejected, js_handler=(
                "(entries) => emit(entries.map(e => [e.failedPropValidation, e.file.name]))"
            ))  # fmt: skip
            self.error = ui.label("").classes("text-negative text-sm break-words").mark("template-error")
            self.error.set_visibility(False)
            with ui.row().classes("justify-end w-full"):
                ui.button("Close", on_click=self.dialog.close).props("flat no-caps").mark("template-close")

    def open(self) -> None:
        self.error.set_visibility(False)
        self.upload.reset()
        self.dialog.open()

    def _refused(self, message: str) -> None:
        self.error.set_text(message)
        self.error.set_visibility(True)
        ui.notify(message, type="negative", multi_line=True)

    def _rejected(self, event: events.GenericEventArguments) -> None:
        for check, name in event.args:
            if check == "max-file-size":
                self._refused(f"{name} is too large: a template can be at most {self._max // (1024 * 1024)} MB.")
            else:
                self._refused(f"{name} is not a PowerPoint template: choose a .pptx file.")

    async def _uploaded(self, event: events.UploadEventArguments) -> None:
        file = event.file
        name = (file.name or "template")[:200]
        self.upload.reset()
        try:
            data = await file.read()
            template = await self._decks.upload_template(self._principal, name, data)
        except UnsupportedMediaTypeError:
            self._refused(f"{name} is not a PowerPoint template (.pptx): open it in PowerPoint, Keynote or "
                          "LibreOffice Impress and save it as a .pptx, then upload that.")  # fmt: skip
            return
        except DomainError as exc:
            self._refused(f"{name} was not uploaded: {exc.message}")
            return
        self.dialog.close()
        ui.notify(f"Template “{template.name}” uploaded", type="positive")
        await self._on_uploaded(template.id)


class DeckForm:
    """What the deck is about (a topic, pasted text, or some of the user's ready resources with an optional focus),
    a title, how many slides, a theme or a template, and Generate. A refusal is a notification; what was typed
    stays."""

    def __init__(self, *, decks: DeckService, rag: RagService | None, principal: Principal, max_template_bytes: int,
                 on_submitted: Callable[[JobRead], Awaitable[None]]) -> None:  # fmt: skip
        self._decks = decks
        self._rag = rag
        self._principal = principal
        self._on_submitted = on_submitted
        self._max_template_bytes = max_template_bytes
        self.resources: ui.select | None = None
        self.focus: ui.input | None = None
        self.uploader: TemplateUpload | None = None
        self.root = ui.card().classes("slides-form w-full gap-3").mark("deck-form")

    async def build(self) -> None:
        ready: list[ResourceRead] = []
        if self._rag is not None:
            try:
                ready = [r for r in await self._rag.list_resources(self._principal) if r.status == "ready"]
            except DomainError:
                ready = []
        with self.root:
            ui.label("New deck").classes("text-lg font-medium")
            self.source = ui.toggle(SOURCES, value="topic").props("spread no-caps").classes("w-full")
            self.source.mark("deck-source")
            with ui.column().classes("w-full gap-2").bind_visibility_from(self.source, "value", value="topic"):
                self.topic = ui.textarea("What is the deck about?", placeholder="How lighthouses work")
                self.topic.props("outlined autogrow maxlength=2000").classes("w-full").mark("deck-topic")
            with ui.column().classes("w-full gap-2").bind_visibility_from(self.source, "value", value="text"):
                self.text = ui.textarea("The text to make slides from").props("outlined maxlength=50000")
                self.text.props("input-class=min-h-[8rem]").classes("w-full").mark("deck-text")
            with ui.column().classes("w-full gap-2").bind_visibility_from(self.source, "value", value="resources"):
                self._resource_picker(ready)
            self.title = ui.input("Title (optional)").props("outlined dense maxlength=200").classes("w-full")
            self.title.mark("deck-title-input")
            self.count = ui.number("Slides", value=6, min=1, max=MAX_SLIDES, step=1, precision=0)
            self.count.props("outlined dense").classes("w-full").mark("deck-count")
            ui.label("Theme").classes("text-sm text-grey-8")
            self.theme = ThemePicker()
            with ui.row().classes("w-full items-center no-wrap gap-2"):
                self.template = ui.select({NO_TEMPLATE: "No template"}, value=NO_TEMPLATE, label="Template",
                                          on_change=self._template_changed)  # fmt: skip
                self.template.props("outlined dense options-dense").classes("grow min-w-0").mark("deck-template")
                upload = ui.button("Upload", icon="upload_file", on_click=self._upload)
                upload.props("flat dense no-caps").tooltip("Upload a .pptx template").mark("template-upload-open")
                named(upload, "Upload template")
            self.generate = ui.button("Generate", icon="slideshow", on_click=self.submit).classes("w-full")
            self.generate.mark("deck-generate")
        self.uploader = TemplateUpload(self._decks, self._principal, max_bytes=self._max_template_bytes,
                                       on_uploaded=self.load_templates)  # fmt: skip
        await self.load_templates()

    def _upload(self) -> None:
        if self.uploader is not None:
            self.uploader.open()

    def _resource_picker(self, ready: list[ResourceRead]) -> None:
        if self._rag is None:
            ui.label("Resources are turned off on this instance.").classes("text-grey-7").mark("deck-no-rag")
            return
        if not ready:
            with ui.column().classes("gap-1").mark("deck-no-resources"):
                ui.label("You have no ready resources yet.").classes("text-grey-8")
                with ui.row().classes("gap-1 items-baseline"):
                    ui.label("Upload documents or paste text on")
                    ui.link("Resources", "/resources").mark("deck-upload-link")
                    ui.label("and come back once they are ready.")
            return
        options = {resource.id: resource.title for resource in ready}
        self.resources = ui.select(options, multiple=True, label="Your resources", with_input=True)
        self.resources.props("outlined dense use-chips options-dense behavior=menu").classes("w-full")
        self.resources.mark("deck-resources")
        self.focus = ui.input("Focus on (optional)", placeholder="what to look for in them")
        self.focus.props("outlined dense maxlength=2000").classes("w-full").mark("deck-focus")

    async def load_templates(self, chosen: str | None = None) -> None:
        """The user's templates in the select (``chosen`` selected, e.g. one just uploaded)."""
        found = await attempt(self._decks.list_templates(self._principal), "Your templates could not be read")
        options = {NO_TEMPLATE: "No template"}
        if found is not None:
            options.update({template.id: template.name for template in found.items})
        self.template.set_options(options, value=chosen if chosen in options else self.template.value)
        self._template_changed()

    def _template_changed(self) -> None:
        self.theme.set_enabled(not self.template.value)

    def request(self) -> DeckRequest | None:
        """The request the form describes, or None after saying what is missing."""
        try:
            return self._request()
        except RefusedError as refused:
            ui.notify(str(refused), type="warning")
            return None

    def _request(self) -> DeckRequest:
        topic: str | None = None
        text: str | None = None
        resource_ids: list[str] | None = None
        source = self.source.value
        if source == "topic":
            topic = (self.topic.value or "").strip()
            if not topic:
                raise RefusedError("Say what the deck should be about.")
        elif source == "text":
            text = self.text.value or ""
            if not text.strip():
                raise RefusedError("Paste the text to make the slides from.")
        else:
            resource_ids = list(self.resources.value or []) if self.resources is not None else []
            if not resource_ids:
                raise RefusedError("Choose at least one of your resources.")
            topic = ((self.focus.value if self.focus is not None else "") or "").strip() or None
        count = self.count.value
        if count is None or not 1 <= count <= MAX_SLIDES or count != int(count):
            raise RefusedError(f"Choose between 1 and {MAX_SLIDES} slides.")
        try:
            return DeckRequest(title=(self.title.value or "").strip() or None, topic=topic, text=text,
                               rag_resource_ids=resource_ids, slide_count=int(count),
                               theme=self.theme.value,  # type: ignore[arg-type]
                               template_id=self.template.value or None)  # fmt: skip
        except ValidationError as exc:
            raise RefusedError(request_problem(exc)) from exc

    async def submit(self) -> None:
        if not self.generate.enabled:  # a double press
            return
        request = self.request()
        if request is None:
            return
        self.generate.disable()
        try:
            job = await self._decks.submit(self._principal, request)
        except DomainError as exc:
            ui.notify(f"The deck was not started: {exc.message}", type="negative", multi_line=True)
            return
        finally:
            self.generate.enable()
        await self._on_submitted(job)


# -- the deck --------------------------------------------------------------------------------------------------------


class SlideThumb:
    """A slide's picture in a 16:9 box: the thumbnail of its current version, or a skeleton and a spinner while it
    is drawn (over the previous picture, dimmed, after an edit)."""

    def __init__(self, *, drawable: bool) -> None:
        self._drawable = drawable
        self.src: str | None = None
        with ui.element("div").classes("slide-thumb") as self.root:
            self.image = ui.element("img").props('draggable=false decoding=async alt=""').mark("slide-thumb-img")
            self.image.set_visibility(False)
            self.skeleton = ui.skeleton(square=True, animation="fade").classes("slide-thumb-skeleton")
            self.spinner = ui.spinner(size="md", color="primary").classes("slide-thumb-spinner")
            self.spinner.mark("slide-thumb-pending")
            self.missing = ui.label("No preview").classes("slide-thumb-missing text-grey-7 text-sm")
            self.missing.set_visibility(False)

    def show(self, slide: SlideRead) -> None:
        ready = slide.thumbnail_ready
        if ready and self.src != slide.thumbnail_url:
            self.src = slide.thumbnail_url
            self.image.props["src"] = slide.thumbnail_url
            self.image.update()
        self.image.props["alt"] = f"Slide {slide.index + 1}: {slide_label(slide)}"
        self.image.set_visibility(self.src is not None)
        self.root.classes(remove="slide-thumb--stale") if ready else self.root.classes(add="slide-thumb--stale")
        pending = not ready and self._drawable
        self.spinner.set_visibility(pending)
        self.skeleton.set_visibility(self.src is None and pending)
        self.missing.set_visibility(not ready and not self._drawable)


class SlideCard:
    """One slide in the grid: its picture (a click or Enter opens the editor), its number and title, and buttons
    that move it one place earlier or later. The card itself can be dragged."""

    def __init__(self, deck: DeckEditor, slide: SlideRead, *, drawable: bool) -> None:
        self._deck = deck
        self.slide = slide
        self.root = ui.element("div").classes("slide-card").props("draggable=true")
        self.root.mark("slide-card", f"slide-{slide.index}")
        with self.root:
            self.open_area = ui.element("div").props("role=button tabindex=0").classes("slide-open")
            self.open_area.on("click", self.open).mark("slide-open", f"slide-open-{slide.index}")
            self.open_area.on("keydown.enter.prevent", self.open).on("keydown.space.prevent", self.open)
            with self.open_area:
                self.thumb = SlideThumb(drawable=drawable)
            with ui.row().classes("slide-card-foot w-full items-center no-wrap gap-1"):
                self.number = ui.label("").classes("slide-number").mark("slide-number")
                self.title = ui.label("").classes("slide-title grow min-w-0 ellipsis").mark("slide-title")
            # Over the picture's corner, shown on hover or focus (always on a touch screen).
            with ui.element("div").classes("slide-moves"):
                self.earlier = ui.button(icon="chevron_left", on_click=lambda: deck.move(self.slide.id, -1))
                self.earlier.props("round dense size=sm unelevated color=white text-color=grey-9 data-move=earlier")
                self.later = ui.button(icon="chevron_right", on_click=lambda: deck.move(self.slide.id, 1))
                self.later.props("round dense size=sm unelevated color=white text-color=grey-9 data-move=later")
        self.show(slide, count=len(deck.deck.slides), selected=False)

    def show(self, slide: SlideRead, *, count: int, selected: bool) -> None:
        self.slide = slide
        n, label = slide.index + 1, slide_label(slide)
        self.root.props["data-index"] = str(slide.index)
        self.root.mark("slide-card", f"slide-{slide.index}")  # by position, as the tests and the API count
        self.open_area.mark("slide-open", f"slide-open-{slide.index}")
        self.earlier.mark("slide-left", f"slide-left-{slide.index}")
        self.later.mark("slide-right", f"slide-right-{slide.index}")
        named(self.open_area, f"Edit slide {n}: {label}")
        named(self.earlier, f"Move slide {n} earlier")
        named(self.later, f"Move slide {n} later")
        self.earlier.set_enabled(slide.index > 0)
        self.later.set_enabled(slide.index < count - 1)
        self.number.set_text(str(n))
        self.title.set_text(label)
        self.root.classes(add="slide-card--selected") if selected else self.root.classes(remove="slide-card--selected")
        self.root.update()
        self.open_area.update()
        self.thumb.show(slide)

    async def open(self) -> None:
        await self._deck.open_slide(self.slide.id)


class SlideEditor:
    """The panel that edits one slide (on the right; the whole width on a phone): its layout and the fields that
    layout shows, Save (conditional on the version that was opened), a rewrite by the model, its versions with
    Restore, insert a slide after it, and Delete."""

    def __init__(self, deck: DeckEditor, *, drawable: bool) -> None:
        self._deck = deck
        self.slide: SlideRead | None = None
        with ui.dialog().props("position=right full-height") as self.dialog, ui.card() as card:
            card.classes("slide-editor h-full no-wrap gap-3").mark("slide-editor")
            self.dialog.mark("editor-dialog")
            with ui.row().classes("items-center w-full gap-2 no-wrap"):
                self.heading = ui.label("").classes("text-lg font-medium grow").mark("editor-heading")
                close = named(ui.button(icon="close", on_click=self.dialog.close), "Close the editor")
                close.props("flat round dense").tooltip("Close").mark("editor-close")
            with ui.column().classes("w-full gap-3 grow overflow-auto no-wrap slide-editor-body"):
                self.preview = SlideThumb(drawable=drawable)
                self.preview.root.classes("slide-editor-preview").mark("editor-preview")
                self.layout = ui.select(LAYOUTS, value="bullets", label="Layout").props("outlined dense")
                self.layout.classes("w-full").mark("editor-layout")
                self.title = ui.input("Title").props("outlined dense maxlength=200").classes("w-full")
                self.title.mark("editor-title")
                shown = self.layout  # each field is shown for the layouts that use it
                self.subtitle = ui.input("Subtitle").props("outlined dense maxlength=300").classes("w-full")
                self.subtitle.mark("editor-subtitle").bind_visibility_from(
                    shown, "value", backward=lambda v: v in ("title", "section")
                )
                self.bullets = ui.textarea("Bullets, one per line").props("outlined autogrow").classes("w-full")
                self.bullets.mark("editor-bullets").bind_visibility_from(
                    shown, "value", backward=lambda v: v in ("bullets", "two_columns")
                )
                self.right = ui.textarea("Right column, one per line").props("outlined autogrow").classes("w-full")
                self.right.mark("editor-right").bind_visibility_from(shown, "value", value="two_columns")
                with ui.column().classes("w-full gap-1").bind_visibility_from(shown, "value", value="table"):
                    self.table = ui.textarea("Table: one row per line, cells split by |")
                    self.table.props("outlined autogrow input-class=font-mono").classes("w-full").mark("editor-table")
                    ui.label("The first line is the header.").classes("text-xs text-grey-7")
                with ui.column().classes("w-full gap-1").bind_visibility_from(shown, "value", value="chart"):
                    self.chart_type = ui.select(CHART_TYPES, value="column", label="Chart type")
                    self.chart_type.props("outlined dense").classes("w-full").mark("editor-chart-type")
                    self.chart = ui.textarea("Chart data").props("outlined autogrow input-class=font-mono")
                    self.chart.classes("w-full").mark("editor-chart")
                    ui.label("First line: the categories, split by |. Then one line per series: its name, then "
                             "its values, split by |.").classes("text-xs text-grey-7")  # fmt: skip
                self.notes = ui.textarea("Speaker notes").props("outlined autogrow maxlength=4000").classes("w-full")
                self.notes.mark("editor-notes")
                self.sources = ui.column().classes("w-full gap-0").mark("editor-sources")
                ui.separator()
                with ui.expansion("Rewrite with the model", icon="auto_awesome").classes("w-full"):
                    self.instructions = ui.input("What to change (optional)", placeholder="shorter bullets")
                    self.instructions.props("outlined dense maxlength=1000").classes("w-full")
                    self.instructions.mark("editor-instructions").on("keydown.enter.stop", self.regenerate)
                    self.regenerate_button = ui.button("Regenerate", icon="refresh", on_click=self.regenerate)
                    self.regenerate_button.props("outline no-caps").classes("mt-2").mark("editor-regenerate")
                self.history = ui.expansion("Versions", icon="history", on_value_change=self._history_toggled)
                self.history.classes("w-full").mark("editor-versions")
                with self.history:
                    self.versions = ui.column().classes("w-full gap-1").mark("editor-version-list")
                insert = ui.button("Insert a slide after this one", icon="add", on_click=self.insert_after)
                insert.props("flat no-caps").mark("editor-insert")
            # Save stays in reach below the fields (on a phone too), whatever is scrolled.
            with ui.row().classes("slide-editor-actions w-full items-center no-wrap gap-2"):
                self.save_button = ui.button("Save", icon="save", on_click=self.save).props("unelevated no-caps")
                self.save_button.mark("editor-save")
                self.spinner = ui.spinner(size="sm")
                self.spinner.set_visibility(False)
                ui.space()
                delete = ui.button("Delete slide", icon="delete", on_click=self.delete).props("flat no-caps")
                delete.props("color=negative").mark("editor-delete")
        submit_on_enter(card, self.save)  # Enter in a one-line field saves (a new line in the others)
        self.dialog.on_value_change(lambda e: None if e.value else deck.editor_closed())

    @property
    def open_id(self) -> str | None:
        return self.slide.id if self.slide is not None and self.dialog.value else None

    def open(self, slide: SlideRead) -> None:
        self.fill(slide)
        self.history.set_value(False)
        self.instructions.set_value("")
        self.dialog.open()

    def fill(self, slide: SlideRead) -> None:
        """The slide's fields as it is now (opened, saved, rewritten or restored)."""
        self.slide = slide
        self._heading(slide)
        self.layout.set_value(slide.layout)
        self.title.set_value(slide.title)
        self.subtitle.set_value(slide.subtitle or "")
        self.bullets.set_value("\n".join(slide.bullets))
        self.right.set_value("\n".join(slide.right))
        self.table.set_value(table_text(slide.table))
        self.chart_type.set_value(slide.chart.type if slide.chart is not None else "column")
        self.chart.set_value(chart_text(slide.chart))
        self.notes.set_value(slide.notes)
        self.sources.clear()
        with self.sources:
            if slide.citations:
                ui.label("Sources").classes("text-sm font-medium")
            for citation in slide.citations:
                where = f" · page {citation.page}" if citation.page else ""
                ui.label(f"[{citation.n}] {citation.title}{where}").classes("text-sm text-grey-8 break-words")
        self.preview.show(slide)

    def _heading(self, slide: SlideRead) -> None:
        self.heading.set_text(f"Slide {slide.index + 1} of {len(self._deck.deck.slides)}")

    def follow(self, slide: SlideRead) -> None:
        """The deck changed around the open slide (a move, a new thumbnail): its number and picture, not its fields
        (what the user typed stays; a newer version elsewhere makes Save a clear conflict)."""
        if self.slide is None:
            return
        self.slide = self.slide.model_copy(update={"index": slide.index})
        self._heading(slide)
        if slide.version == self.slide.version:
            self.slide = slide
        self.preview.show(slide)

    def edit(self, version: int) -> SlideEdit:
        """The fields the layout shows, as an edit of ``version`` (the one opened). Raises RefusedError."""
        layout = self.layout.value
        changes: dict[str, Any] = {"layout": layout, "title": (self.title.value or "").strip(),
                                   "notes": self.notes.value or "", "version": version}  # fmt: skip
        if layout in ("title", "section"):
            changes["subtitle"] = (self.subtitle.value or "").strip() or None
        if layout in ("bullets", "two_columns"):
            changes["bullets"] = lines_of(self.bullets.value)
        if layout == "two_columns":
            changes["right"] = lines_of(self.right.value)
        if layout == "table":
            changes["table"] = parse_table(self.table.value or "")
        if layout == "chart":
            changes["chart"] = parse_chart(self.chart.value or "", self.chart_type.value or "column")
        try:
            return SlideEdit(**changes)
        except ValidationError as exc:
            raise RefusedError(edit_problem(exc)) from exc

    async def save(self) -> None:
        if self.slide is None or not self.save_button.enabled:
            return
        try:
            edit = self.edit(self.slide.version)
        except RefusedError as refused:
            ui.notify(str(refused), type="warning")
            return
        self.save_button.disable()
        self.spinner.set_visibility(True)
        try:
            saved = await self._deck.save(self.slide.id, edit)
        finally:
            self.save_button.enable()
            self.spinner.set_visibility(False)
        if saved is not None:
            self.fill(saved)

    async def regenerate(self) -> None:
        if self.slide is None or not self.regenerate_button.enabled:
            return
        try:
            request = RegenerateRequest(instructions=(self.instructions.value or "").strip() or None)
        except ValidationError:
            ui.notify("Say what to change in at most 1,000 characters.", type="warning")
            return
        self.regenerate_button.disable()
        self.regenerate_button.props("loading")
        try:
            rewritten = await self._deck.regenerate(self.slide.id, request)
        finally:
            self.regenerate_button.enable()
            self.regenerate_button.props(remove="loading")
        if rewritten is not None:
            self.fill(rewritten)
            await self._show_versions()

    async def _history_toggled(self, event: events.ValueChangeEventArguments) -> None:
        if event.value:
            await self._show_versions()

    async def _show_versions(self) -> None:
        if self.slide is None or not self.history.value:
            return
        found = await self._deck.versions(self.slide.id)
        self.versions.clear()
        if found is None:
            return
        with self.versions:
            for version in found:
                self._version_row(version)

    def _version_row(self, version: SlideVersionRead) -> None:
        with ui.row().classes("w-full items-center no-wrap gap-2 slide-version").mark("editor-version"):
            with ui.column().classes("gap-0 grow min-w-0"):
                cause = CAUSES.get(version.cause, version.cause.capitalize())
                ui.label(f"v{version.version} · {cause}").classes("text-sm font-medium").mark("version-label")
                summary = version.content.title or LAYOUTS.get(version.content.layout, "")
                ui.label(f"{version.created_at:%-d %b %Y %H:%M} UTC · {summary}").classes(
                    "text-xs text-grey-7 ellipsis w-full"
                )
            if version.current:
                ui.badge("current", color="positive").props("outline")
            else:
                restore = ui.button("Restore", on_click=lambda v=version.version: self.restore(v))
                restore.props("flat dense no-caps color=primary").mark("version-restore", f"restore-{version.version}")

    async def restore(self, version: int) -> None:
        if self.slide is None:
            return
        restored = await self._deck.restore(self.slide.id, version)
        if restored is not None:
            self.fill(restored)
            await self._show_versions()

    async def insert_after(self) -> None:
        if self.slide is not None:
            await self._deck.add_slide(after=self.slide.id)

    def delete(self) -> None:
        if self.slide is None:
            return
        slide = self.slide

        async def action() -> None:
            if await self._deck.delete_slide(slide.id):
                self.dialog.close()

        confirm(f"Delete slide {slide.index + 1}, “{slide_label(slide)}”? Its versions go with it.",
                action_label="Delete slide", marker="slide-delete-confirm", action=action,
                then=lambda: None)  # fmt: skip


class DeckEditor:
    """A finished deck: its title, Add slide, Download .pptx and Delete, and the grid of its slides (drag a card, or
    use its arrows, to move it). Thumbnails not drawn yet are polled for until they are."""

    def __init__(self, *, decks: DeckService, principal: Principal, deck: DeckRead,
                 on_deleted: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
        self._decks = decks
        self._principal = principal
        self._on_deleted = on_deleted
        self.deck = deck
        self.cards: list[SlideCard] = []
        self._drawable = thumbnails.available() is None
        self._polling = False
        self._waited = 0.0
        with ui.card().classes("slides-deck w-full gap-3").mark("deck") as self.root:
            with ui.row().classes("w-full items-start no-wrap gap-2"):
                with ui.column().classes("gap-0 grow min-w-0"):
                    self.title = ui.label("").classes("text-xl font-semibold break-words").mark("deck-title")
                    self.meta = ui.label("").classes("text-sm text-grey-7").mark("deck-meta")
                delete = named(ui.button("Delete deck", icon="delete", on_click=self.delete), "Delete deck")
                delete.props("flat no-caps color=negative").classes("slides-delete-deck").mark("deck-delete")
            with ui.row().classes("w-full items-center gap-2 slides-toolbar"):
                add = ui.button("Add slide", icon="add", on_click=lambda: self.add_slide(after=None))
                add.props("outline no-caps").mark("deck-add-slide")
                self.download = ui.button("Download .pptx", icon="download").props("unelevated no-caps")
                self.download.props("type=a download").mark("deck-download")
            if not self._drawable:
                ui.label("Slide previews need LibreOffice on the server; the deck itself is complete.").classes(
                    "text-sm text-grey-7").mark("deck-no-previews")  # fmt: skip
            self.notice = ui.label("").classes("text-sm text-grey-7").mark("deck-thumb-notice")
            self.notice.set_visibility(False)
            self.grid = ui.element("div").classes("slide-grid").mark("slide-grid")
            self.grid.on("slidemove", self._dropped, js_handler="(e) => emit(e.detail.from, e.detail.to)")
            self.timer = ui.timer(THUMB_POLL_S, self._poll, active=False)
        self.editor = SlideEditor(self, drawable=self._drawable)
        client = ui.context.client
        client.on_disconnect(lambda: None if self.root.is_deleted else self.timer.deactivate())
        client.on_connect(lambda: None if self.root.is_deleted else self._watch())
        self.show(deck)

    # -- showing -----------------------------------------------------------------------------------------------

    def show(self, deck: DeckRead) -> None:
        """The deck as it is now: cards kept where the slides are the same (so pictures do not flicker), rebuilt
        when slides were added, removed or moved."""
        self.deck = deck
        self.title.set_text(deck.title)
        count = len(deck.slides)
        look = THEMES[deck.theme].label if deck.theme in THEMES else deck.theme
        self.meta.set_text(f"{count} slide{'s' if count != 1 else ''} · "
                           + ("your template" if deck.template_id else f"{look} theme")
                           + f" · changed {deck.updated_at:%-d %b %Y %H:%M} UTC")  # fmt: skip
        self.download.props["href"] = deck.export_url
        self.download.update()
        selected = self.editor.open_id
        if [card.slide.id for card in self.cards] != [slide.id for slide in deck.slides]:
            self.grid.clear()
            with self.grid:
                self.cards = [SlideCard(self, slide, drawable=self._drawable) for slide in deck.slides]
        for card, slide in zip(self.cards, deck.slides, strict=True):
            card.show(slide, count=count, selected=slide.id == selected)
            if slide.id == selected:
                self.editor.follow(slide)
        self._watch()

    def _watch(self) -> None:
        """Poll while a thumbnail is being drawn."""
        waiting = self._drawable and any(not slide.thumbnail_ready for slide in self.deck.slides)
        if waiting and not self.timer.active:
            self._waited = 0.0
            self.notice.set_visibility(False)
        self.timer.active = waiting and self._waited < THUMB_PATIENCE_S

    async def _poll(self) -> None:
        if self._polling:
            return
        self._polling = True
        try:
            self._waited += THUMB_POLL_S
            try:
                deck = await self._decks.get(self._principal, self.deck.id)
            except NotFoundError:
                self.timer.deactivate()
                return
            except Exception:
                log.exception("reading deck %s failed", self.deck.id)
                self.timer.deactivate()
                return
            self.show(deck)
            if self.timer.active and self._waited >= THUMB_PATIENCE_S:
                self.timer.deactivate()
                self.notice.set_text("Some previews were not drawn. Reload the page to try again.")
                self.notice.set_visibility(True)
        finally:
            self._polling = False

    def _index(self, slide_id: str) -> int | None:
        return next((slide.index for slide in self.deck.slides if slide.id == slide_id), None)

    def _slide(self, deck: DeckRead, slide_id: str) -> SlideRead | None:
        return next((slide for slide in deck.slides if slide.id == slide_id), None)

    def editor_closed(self) -> None:
        for card in self.cards:
            card.root.classes(remove="slide-card--selected")

    async def open_slide(self, slide_id: str) -> None:
        slide = self._slide(self.deck, slide_id)
        if slide is None:
            return
        for card in self.cards:
            selected = card.slide.id == slide_id
            card.root.classes(add="slide-card--selected") if selected else card.root.classes(
                remove="slide-card--selected")  # fmt: skip
        self.editor.open(slide)

    # -- changing ----------------------------------------------------------------------------------------------

    async def _changed(self, call: Awaitable[DeckRead], failure: str) -> DeckRead | None:
        deck = await attempt(call, failure)
        if deck is not None:
            self.show(deck)
        return deck

    async def save(self, slide_id: str, edit: SlideEdit) -> SlideRead | None:
        index = self._index(slide_id)
        if index is None:
            return None
        try:
            deck = await self._decks.edit_slide(self._principal, self.deck.id, index, edit)
        except ConflictError:
            ui.notify(f"Slide {index + 1} was changed somewhere else meanwhile, so your edit was not saved. Close "
                      "the editor and open the slide again to see its new version.", type="warning",
                      multi_line=True)  # fmt: skip
            await self.reload()
            return None
        except DomainError as exc:
            ui.notify(f"Slide {index + 1} was not saved: {exc.message}", type="negative", multi_line=True)
            return None
        self.show(deck)
        ui.notify(f"Slide {index + 1} saved: its preview is being redrawn", type="positive")
        return self._slide(deck, slide_id)

    async def reload(self) -> None:
        deck = await attempt(self._decks.get(self._principal, self.deck.id), "The deck could not be read")
        if deck is not None:
            self.show(deck)

    async def regenerate(self, slide_id: str, request: RegenerateRequest) -> SlideRead | None:
        index = self._index(slide_id)
        if index is None:
            return None
        deck = await self._changed(self._decks.regenerate(self._principal, self.deck.id, index, request),
                                   f"Slide {index + 1} was not rewritten")  # fmt: skip
        if deck is None:
            return None
        ui.notify(f"Slide {index + 1} rewritten", type="positive")
        return self._slide(deck, slide_id)

    async def versions(self, slide_id: str) -> list[SlideVersionRead] | None:
        index = self._index(slide_id)
        if index is None:
            return None
        found = await attempt(self._decks.versions(self._principal, self.deck.id, index),
                              "The versions could not be read")  # fmt: skip
        return found.items if found is not None else None

    async def restore(self, slide_id: str, version: int) -> SlideRead | None:
        index = self._index(slide_id)
        if index is None:
            return None
        deck = await self._changed(self._decks.restore(self._principal, self.deck.id, index, version),
                                   f"Version {version} was not restored")  # fmt: skip
        if deck is None:
            return None
        ui.notify(f"Slide {index + 1} is back to version {version}", type="positive")
        return self._slide(deck, slide_id)

    async def add_slide(self, *, after: str | None) -> None:
        position = None if after is None else (self._index(after) or 0) + 1
        if len(self.deck.slides) >= MAX_SLIDES:
            ui.notify(f"A deck has at most {MAX_SLIDES} slides.", type="warning")
            return
        new = SlideCreate(layout="bullets", title="New slide", bullets=["First point"], position=position)
        before = {slide.id for slide in self.deck.slides}
        deck = await self._changed(self._decks.add_slide(self._principal, self.deck.id, new), "No slide was added")
        if deck is None:
            return
        added = next((slide for slide in deck.slides if slide.id not in before), None)
        if added is not None:
            ui.notify(f"Slide {added.index + 1} added", type="positive")
            await self.open_slide(added.id)

    async def delete_slide(self, slide_id: str) -> bool:
        index = self._index(slide_id)
        if index is None:
            return False
        deck = await self._changed(self._decks.delete_slide(self._principal, self.deck.id, index),
                                   f"Slide {index + 1} was not deleted")  # fmt: skip
        if deck is not None:
            ui.notify(f"Slide {index + 1} deleted", type="positive")
        return deck is not None

    async def move(self, slide_id: str, step: int) -> None:
        index = self._index(slide_id)
        if index is None:
            return
        with self.root:  # the pressed button goes with the grid's redraw: speak from the deck's card
            await self.reorder(index, index + step, focus="earlier" if step < 0 else "later")

    async def _dropped(self, event: events.GenericEventArguments) -> None:
        try:
            source, target = (int(value) for value in event.args)
        except (TypeError, ValueError):  # not what slides.js sends
            return
        await self.reorder(source, target)

    async def reorder(self, source: int, target: int, *, focus: str | None = None) -> None:
        """Move the slide at ``source`` to ``target``; after a move by button that button keeps the focus."""
        count = len(self.deck.slides)
        if not (0 <= source < count and 0 <= target < count) or source == target:
            return
        request = ReorderRequest(order=moved(count, source, target), version=self.deck.version)
        try:
            deck = await self._decks.reorder(self._principal, self.deck.id, request)
        except ConflictError:
            ui.notify("The deck was changed somewhere else meanwhile: here it is as it is now. Move the slide "
                      "again.", type="warning", multi_line=True)  # fmt: skip
            await self.reload()
            return
        except DomainError as exc:
            ui.notify(f"The slides were not moved: {exc.message}", type="negative", multi_line=True)
            return
        self.show(deck)
        ui.notify(f"Slide {source + 1} moved to place {target + 1}", type="positive")
        if focus is not None:
            ui.run_javascript(f"window.agentSlides?.focusCard({self.grid.id}, {target}, {focus!r})")

    def delete(self) -> None:
        async def action() -> None:
            await self._decks.delete(self._principal, self.deck.id)  # a refusal is told by confirm()
            ui.notify(f"Deck “{self.deck.title}” deleted", type="positive")
            await self._on_deleted()

        confirm(f"Delete the deck “{self.deck.title}” and its file? This cannot be undone.",
                action_label="Delete deck", marker="deck-delete-confirm", action=action, then=lambda: None)  # fmt: skip


class DeckView:
    """The deck in the URL: its progress while it is made (polled, with Cancel), then the deck; a plain "not found"
    for an id that is not the user's."""

    def __init__(self, *, decks: DeckService, jobs: JobService, principal: Principal,
                 on_ended: Callable[[], Awaitable[None]],
                 on_deleted: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
        self._decks = decks
        self._jobs = jobs
        self._principal = principal
        self._on_ended = on_ended
        self._on_deleted = on_deleted
        self.deck_id: str | None = None
        self.editor: DeckEditor | None = None
        self._bar: ui.linear_progress | None = None
        self._stage: ui.label | None = None
        self._steps: dict[str, ui.element] = {}
        self._polling = False
        with ui.column().classes("slides-main w-full gap-4").mark("deck-main") as self.root:
            self.body = ui.column().classes("w-full gap-4")
            # Outside the body (which is redrawn), so a poll never deletes the timer that runs it.
            self.timer = ui.timer(JOB_POLL_S, self._poll, active=False)
        client = ui.context.client
        client.on_disconnect(self.timer.deactivate)
        client.on_connect(lambda: self.timer.activate() if self._following else None)

    @property
    def _following(self) -> bool:
        return self._bar is not None

    async def show(self, deck_id: str | None) -> None:
        self.timer.deactivate()
        self.deck_id = deck_id
        self._redraw()
        if deck_id is None:
            with self.body, ui.card().classes("slides-empty w-full items-center gap-2 py-10").mark("deck-empty"):
                ui.icon("slideshow", size="xl").classes("text-grey-5")
                ui.label("Your deck appears here").classes("text-lg text-grey-8")
                ui.label("Say what it is about, pick a look, then press Generate.").classes("text-grey-7")
            return
        try:
            job = await self._jobs.get(self._principal, deck_id, family=FAMILY)
        except NotFoundError:
            job = None
        if job is None or job.kind != KIND:
            self._not_found()
            return
        await self._render(job)

    def reveal(self) -> None:
        """Bring the deck into view (on a phone it sits above the form whose button started it)."""
        ui.run_javascript(f"getHtmlElement({self.root.id})?.scrollIntoView({{block: 'start', behavior: 'smooth'}})")

    def _redraw(self) -> None:
        self.body.clear()
        self._bar = self._stage = None
        self._steps = {}
        self.editor = None

    def _not_found(self) -> None:
        self._redraw()
        with self.body, ui.card().classes("w-full gap-1").mark("deck-not-found"):
            ui.label("Deck not found").classes("text-lg font-medium")
            ui.label("There is no deck of yours with this link.").classes("text-grey-7")

    async def _render(self, job: JobRead) -> None:
        if job.status in ACTIVE:
            self._progress(job)
            self.timer.activate()
            return
        if job.status == "done":
            try:
                deck = await self._decks.get(self._principal, job.id)
            except NotFoundError:
                self._not_found()
                return
            self._redraw()
            with self.body:
                self.editor = DeckEditor(decks=self._decks, principal=self._principal, deck=deck,
                                         on_deleted=self._on_deleted)  # fmt: skip
            if any(not slide.thumbnail_ready for slide in deck.slides):  # e.g. a restart stopped their drawing
                try:
                    await self._decks.ensure_thumbnails(self._principal, deck.id)
                except DomainError as exc:
                    log.info("thumbnails of deck %s not asked for: %s", deck.id, exc.message)
            return
        self._redraw()
        with self.body, ui.card().classes("w-full gap-1").mark("deck-ended"):
            ui.label(job_title(job)).classes("text-lg font-medium break-words")
            if job.status == "cancelled":
                ui.label("You cancelled this deck.").classes("text-grey-8").mark("deck-cancelled")
            else:
                reason = job.error.message if job.error is not None else "it stopped"
                what = "was interrupted" if job.status == "interrupted" else "could not be made"
                ui.label(f"The deck {what}: {reason}.").classes("text-negative break-words").mark("deck-error")
                ui.label("Change what you need in the form and generate it again.").classes("text-grey-7")

    def _progress(self, job: JobRead) -> None:
        if self._bar is None or self._stage is None:
            self._redraw()
            with self.body, ui.card().classes("w-full gap-3").mark("deck-progress"):
                with ui.row().classes("w-full items-center no-wrap gap-2"):
                    ui.spinner("dots", size="md", color="primary")
                    with ui.column().classes("gap-0 grow min-w-0"):
                        ui.label("Making your deck").classes("text-lg font-medium")
                        ui.label(job_title(job)).classes("text-sm text-grey-7 ellipsis w-full")
                    cancel = ui.button("Cancel", icon="close", on_click=self.cancel).props("flat no-caps")
                    cancel.mark("deck-cancel")
                self._bar = ui.linear_progress(0, show_value=False, size="10px").classes("rounded")
                named(self._bar, "Progress of the deck").mark("deck-progress-bar")
                with ui.element("ol").classes("slides-steps").props('aria-label="Stages"'):
                    for name, label in STEPS.items():
                        with ui.element("li").classes("slides-step").mark("deck-step", f"step-{name}") as step:
                            ui.icon("radio_button_unchecked", size="xs").classes("slides-step-icon")
                            ui.label(label)
                        self._steps[name] = step
                self._stage = ui.label("").classes("text-sm").mark("deck-stage")
        fraction = overall_fraction(job)
        if fraction is None:
            self._bar.props("indeterminate")
        else:
            self._bar.props(remove="indeterminate")
            self._bar.set_value(fraction)
        self._stage.set_text(describe_progress(job))
        icons = {"done": "check_circle", "current": "pending", "todo": "radio_button_unchecked"}
        for name, state in step_states(job).items():
            step = self._steps[name]
            step.classes(remove="slides-step--done slides-step--current slides-step--todo",
                         add=f"slides-step--{state}")  # fmt: skip
            step.props.set_optional("aria-current", "step" if state == "current" else None)
            step.update()
            for icon in step.default_slot.children:
                if isinstance(icon, ui.icon):
                    icon.set_name(icons[state])

    async def _poll(self) -> None:
        if self._polling or self.deck_id is None:
            return
        self._polling = True
        polled = self.deck_id
        try:
            try:
                job = await self._jobs.get(self._principal, polled, family=FAMILY)
            except NotFoundError:  # deleted meanwhile
                if self.deck_id == polled:
                    self.timer.deactivate()
                    self._not_found()
                return
            except Exception:
                log.exception("following deck job %s failed", polled)
                if self.deck_id == polled:
                    self.timer.deactivate()
                    ui.notify("Could not follow the deck: reload the page to try again.", type="negative")
                return
            if self.deck_id != polled:  # another deck is shown now: this answer is stale
                return
            if job.status in ACTIVE:
                self._progress(job)
                return
            self.timer.deactivate()
            await self._render(job)
            await self._on_ended()
        finally:
            self._polling = False

    async def cancel(self) -> None:
        if self.deck_id is None:
            return
        try:
            await self._jobs.cancel(self._principal, self.deck_id, family=FAMILY)
        except ConflictError:
            pass  # it ended meanwhile: the next poll shows how
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
        await self._poll()


class RecentDecks:
    """The user's decks (and the ones being made), newest first; a link opens one."""

    def __init__(self, decks: DeckService, jobs: JobService, principal: Principal, current: str | None) -> None:
        self._decks = decks
        self._jobs = jobs
        self._principal = principal
        self.current = current
        with ui.card().classes("slides-recent w-full gap-2").mark("recent-decks"):
            ui.label("Your decks").classes("text-lg font-medium")
            self.body = ui.column().classes("w-full gap-1")

    async def refresh(self) -> None:
        try:
            found = (await self._jobs.list_jobs(self._principal, family=FAMILY, kind=KIND, limit=20,
                                                cursor=None)).items  # fmt: skip
            made = {deck.id: deck for deck in (await self._decks.list_decks(self._principal)).items}
        except DomainError as exc:
            ui.notify(f"Your decks could not be listed: {exc.message}", type="negative")
            return
        self.body.clear()
        with self.body:
            if not found:
                ui.label("None yet.").classes("text-grey-7").mark("no-decks")
            for job in found:
                deck = made.get(job.id)
                current = job.id == self.current
                link = ui.link(target=f"{PAGE}?deck={job.id}").classes(
                    "slides-recent-item row items-center no-wrap gap-2 px-2 py-1 w-full"
                    + (" slides-recent-item--current" if current else "")
                )
                if current:
                    link.props('aria-current="page"')
                with link.mark("recent-deck", f"recent-{job.id}"):
                    ui.icon("slideshow", size="sm").classes("text-grey-7")
                    with ui.column().classes("gap-0 grow min-w-0"):
                        title = deck.title if deck is not None else job_title(job)
                        ui.label(title).classes("ellipsis w-full").mark("recent-title")
                        when = deck.updated_at if deck is not None else job.created_at
                        count = f"{deck.slide_count} slides · " if deck is not None else ""
                        ui.label(f"{count}{when:%-d %b %Y %H:%M} UTC").classes("text-xs text-grey-7")
                    if deck is None or job.status != "done":
                        ui.badge(STATUS_TEXT.get(job.status, job.status),
                                 color=STATUS_COLORS.get(job.status, "grey"))  # fmt: skip


__all__ = [
    "DeckEditor",
    "DeckForm",
    "DeckView",
    "RecentDecks",
    "SlideEditor",
    "add_slides_assets",
    "chart_text",
    "describe_progress",
    "disabled_notice",
    "job_title",
    "moved",
    "overall_fraction",
    "parse_chart",
    "parse_table",
    "slides_layout",
    "step_states",
    "table_text",
]
