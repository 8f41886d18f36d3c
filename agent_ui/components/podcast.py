"""Podcasts in the browser: the form (what to talk about, who talks with which voice, how long), the job's progress
while it is made, and the podcast once it is done: a player, chapters and the transcript, each line with its
citations and an editor that speaks it again.

Seeking and following the audio happen in the browser (``static/podcast.js``): a line or a chapter carries its
start in ``data-start``/``data-seek``, and the line being heard gets ``podcast-line--playing`` from the audio
element's own ``timeupdate``, with no round trip to the server."""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path

from nicegui import ui
from pydantic import ValidationError

from agent_ui.components.a11y import named
from agent_ui.components.resources import PassagePanel, position_text
from agent_ui.components.voice import voice_label
from services.auth import Principal
from services.errors import ConflictError, DomainError, NotFoundError
from services.jobs import JobRead, JobService
from services.rag import RagService
from services.rag.schemas import ResourceRead
from services.tts import PodcastService, TtsService
from services.tts.podcast import KIND, SHAPES
from services.tts.schemas import (
    Citation,
    LineEdit,
    PodcastLine,
    PodcastRead,
    PodcastRequest,
    SpeakerIn,
    SynthesizeRequest,
    VoiceList,
)

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parents[1] / "static"
POLL_S = 0.5
FAMILY = "generation"
ACTIVE = frozenset({"queued", "running"})
AUTO = "auto"  # the voice choice that lets the service cast one
MAX_SPEAKERS = 4
NAMES = ("Alex", "Sam", "Robin", "Kim")
SOURCES = {"topic": "Topic", "text": "Text", "resources": "Resources"}
LENGTHS = {length: f"{length.capitalize()} · {chapters * lines} lines" for length, (chapters, lines) in SHAPES.items()}
# Where each stage sits on the one bar (the stages report their own done/total).
STAGE_SPANS = {"sources": (0.0, 0.05), "script": (0.05, 0.35), "voices": (0.35, 0.92), "mixing": (0.92, 1.0)}
STATUS_TEXT = {"queued": "waiting", "running": "in progress", "done": "ready", "failed": "failed",
               "cancelled": "cancelled", "interrupted": "interrupted"}  # fmt: skip
STATUS_COLORS = {"queued": "grey-7", "running": "warning", "done": "positive", "failed": "negative",
                 "cancelled": "grey-7", "interrupted": "negative"}  # fmt: skip
SPEAKER_COLORS = ("primary", "deep-orange-8", "teal-8", "purple-6")
PREVIEW = "Hi, I am {name}, and this is how I sound on the show."


# -- pure helpers (tested on their own) ------------------------------------------------------------------------------


def clock(seconds: float) -> str:
    """``75.4`` → ``1:15``; an hour or more → ``1:02:03``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def overall_fraction(job: JobRead) -> float | None:
    """How much of the whole podcast is made, from its stage and the stage's own share; None while it waits."""
    if job.status == "done":
        return 1.0
    progress = job.progress
    if progress is None or progress.stage not in STAGE_SPANS:
        return None
    low, high = STAGE_SPANS[progress.stage]
    return round(low + (high - low) * (job.fraction or 0.0), 3)


def describe_progress(job: JobRead) -> str:
    """What the job is doing, in words: "Writing the script: chapter 1 of 2", "Voices: line 3 of 10", "Mixing"."""
    progress = job.progress
    if job.status == "queued" or progress is None or progress.stage == "queued":
        return "Waiting for a free worker"
    done, total = progress.done, progress.total
    if progress.stage == "sources":
        return "Reading your resources"
    if progress.stage == "script":
        if done and total and total > 1:
            return f"Writing the script: chapter {done:g} of {total - 1:g}"
        return "Writing the script: the outline"
    if progress.stage == "voices" and total:
        if done is not None and done >= total:
            return "Voices: every line spoken"
        return f"Voices: line {(done or 0) + 1:g} of {total:g}"
    if progress.stage == "mixing":
        return "Mixing"
    return progress.stage.capitalize()


def job_title(job: JobRead) -> str:
    """What a podcast job is called: its title once written, else what it was asked to be about."""
    if job.result and job.result.get("title"):
        return str(job.result["title"])
    params = job.params
    title = params.get("title") or params.get("topic")
    if title:
        return str(title)[:80]
    return "From your text" if params.get("text") else "From your resources"


def voice_choices(listing: VoiceList) -> dict[str, str]:
    """The automatic choice, then every voice that can speak now: engines in order of preference, each one's voices by
    language, labelled by engine, language and gender."""
    engines = [engine.name for engine in listing.engines]
    speaking = [voice for voice in listing.voices if voice.available]
    labels = {voice.id: voice_label(voice, listing) for voice in speaking}
    ordered = sorted(speaking, key=lambda v: (engines.index(v.engine) if v.engine in engines else 99, labels[v.id]))
    return {AUTO: "Chosen for you", **{voice.id: labels[voice.id] for voice in ordered}}


def cited(citation: Citation) -> str:
    """``[1] Harbour notes · page 2``."""
    where = position_text(citation.page, citation.heading)
    return f"[{citation.n}] {citation.title}" + (f" · {where}" if where else "")


def audio_url(podcast: PodcastRead) -> str:
    """The MP3 with its version, so the browser fetches an edited podcast's new audio rather than its cached one."""
    return f"{podcast.audio.url}?v={podcast.audio.version}"


def request_problem(exc: ValidationError) -> str:
    """A refused form as one plain sentence."""
    fields = {str(part) for error in exc.errors() for part in error["loc"]}
    if "name" in fields:
        return "A speaker's name can be at most 40 characters, without brackets or line breaks."
    if "title" in fields:
        return "The title can be at most 200 characters."
    if "text" in fields:
        return "The text can be at most 50,000 characters."
    if "topic" in fields:
        return "The topic can be at most 2,000 characters."
    return "Check the form: " + str(exc.errors()[0]["msg"])


@cache
def _asset(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def add_podcast_assets() -> None:
    """Inline (the page's policy allows inline code, not other origins), once per page."""
    ui.add_head_html(f"<style>{_asset('podcast.css')}</style>\n<script>{_asset('podcast.js')}</script>")


def podcast_grid() -> ui.element:
    """The page's body: enter it, then build the podcast, the form and the recent list, in that order."""
    with ui.element("div").classes("podcast-page"):
        return ui.element("div").classes("podcast-grid")


def disabled_notice() -> None:
    with ui.card().classes("w-full").mark("podcast-off"):
        ui.label("Podcasts are turned off on this instance.").classes("text-lg")
        ui.label("They need text to speech: an admin turns it on with AGENT_UI_TTS__ENABLED=true.").classes(
            "text-grey-7"
        )


# -- the form --------------------------------------------------------------------------------------------------------


class SpeakerRow:
    """One speaker: a name, a voice, Preview and Remove."""

    def __init__(self, form: PodcastForm, name: str, voice: str) -> None:
        self._form = form
        with ui.column().classes("podcast-speaker w-full gap-1 p-2").mark("podcast-speaker") as self.root:
            with ui.row().classes("w-full items-center no-wrap gap-1"):
                self.name = ui.input("Name", value=name).props("outlined dense maxlength=40")
                self.name.classes("grow min-w-0").mark("speaker-name")
                self.preview = named(ui.button(icon="play_circle", on_click=self.speak), "Preview this voice")
                self.preview.props("flat round dense color=primary").tooltip("Preview").mark("speaker-preview")
                self.remove = named(ui.button(icon="close", on_click=lambda: form.remove(self)), "Remove speaker")
                self.remove.props("flat round dense color=grey-7").tooltip("Remove").mark("speaker-remove")
            self.voice = ui.select(form.voices, value=voice if voice in form.voices else AUTO, label="Voice",
                                   with_input=True)  # fmt: skip
            self.voice.props("outlined dense options-dense behavior=menu").classes("w-full").mark("speaker-voice")

    @property
    def chosen_voice(self) -> str | None:
        value = self.voice.value
        return None if value in (None, AUTO) else str(value)

    async def speak(self) -> None:
        if not self.preview.enabled:  # pressed again while the last one is spoken
            return
        self.preview.disable()
        try:
            await self._form.preview(self)
        finally:
            self.preview.enable()


class PodcastForm:
    """What to talk about (a topic, pasted text, or some of the user's ready resources with an optional focus), a
    title, a length, 1-4 speakers, and Generate. A refusal is a notification; what was typed stays."""

    def __init__(self, *, podcasts: PodcastService, tts: TtsService, rag: RagService | None, principal: Principal,
                 on_submitted: Callable[[JobRead], Awaitable[None]]) -> None:  # fmt: skip
        self._podcasts = podcasts
        self._tts = tts
        self._rag = rag
        self._principal = principal
        self._on_submitted = on_submitted
        self._cast: list[str] = []
        self.voices: dict[str, str] = {AUTO: "Chosen for you"}
        self.speakers: list[SpeakerRow] = []
        self.resources: ui.select | None = None
        self.focus: ui.input | None = None
        self.root = ui.card().classes("podcast-form w-full gap-3").mark("podcast-form")

    async def build(self) -> None:
        listing = await self._tts.voices()
        self.voices = voice_choices(listing)
        try:  # two voices that sound different, as the service would cast them
            self._cast = [voice.id for voice in await self._tts.cast(MAX_SPEAKERS, "en")]
        except DomainError:
            self._cast = []
        ready: list[ResourceRead] = []
        if self._rag is not None:
            try:
                ready = [r for r in await self._rag.list_resources(self._principal) if r.status == "ready"]
            except DomainError:
                ready = []
        with self.root:
            ui.label("New podcast").classes("text-lg font-medium")
            self.source = ui.toggle(SOURCES, value="topic").props("spread no-caps").classes("w-full")
            self.source.mark("podcast-source")
            with ui.column().classes("w-full gap-2").bind_visibility_from(self.source, "value", value="topic"):
                self.topic = ui.textarea("What should they talk about?", placeholder="How lighthouses work")
                self.topic.props("outlined autogrow maxlength=2000").classes("w-full").mark("podcast-topic")
            with ui.column().classes("w-full gap-2").bind_visibility_from(self.source, "value", value="text"):
                self.text = ui.textarea("The text to talk about").props("outlined maxlength=50000")
                self.text.props("input-class=min-h-[8rem]").classes("w-full").mark("podcast-text")
            with ui.column().classes("w-full gap-2").bind_visibility_from(self.source, "value", value="resources"):
                self._resource_picker(ready)
            self.title = ui.input("Title (optional)").props("outlined dense maxlength=200").classes("w-full")
            self.title.mark("podcast-title-input")
            self.length = ui.select(LENGTHS, value="short", label="Length").props("outlined dense options-dense")
            self.length.classes("w-full").mark("podcast-length")
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Speakers").classes("font-medium")
                self.add_button = ui.button("Add speaker", icon="person_add", on_click=self.add)
                self.add_button.props("flat dense no-caps").mark("speaker-add")
            self.rows = ui.column().classes("w-full gap-2").mark("podcast-speakers")
            self.player = ui.element("div").classes("w-full").mark("podcast-preview")
            self.generate = ui.button("Generate", icon="podcasts", on_click=self.submit).classes("w-full")
            self.generate.mark("podcast-generate")
        for name in NAMES[:2]:
            self.add(name)

    def _resource_picker(self, ready: list[ResourceRead]) -> None:
        if self._rag is None:
            ui.label("Resources are turned off on this instance.").classes("text-grey-7").mark("podcast-no-rag")
            return
        if not ready:
            with ui.column().classes("gap-1").mark("podcast-no-resources"):
                ui.label("You have no ready resources yet.").classes("text-grey-8")
                with ui.row().classes("gap-1 items-baseline"):
                    ui.label("Upload documents or paste text on")
                    ui.link("Resources", "/resources").mark("podcast-upload-link")
                    ui.label("and come back once they are ready.")
            return
        options = {resource.id: resource.title for resource in ready}
        self.resources = ui.select(options, multiple=True, label="Your resources", with_input=True)
        self.resources.props("outlined dense use-chips options-dense behavior=menu").classes("w-full")
        self.resources.mark("podcast-resources")
        self.focus = ui.input("Focus on (optional)", placeholder="what to look for in them")
        self.focus.props("outlined dense maxlength=2000").classes("w-full").mark("podcast-focus")

    def add(self, name: str | None = None) -> None:
        if len(self.speakers) >= MAX_SPEAKERS:
            return
        taken = {row.name.value for row in self.speakers}
        name = name or next((n for n in NAMES if n not in taken), f"Speaker {len(self.speakers) + 1}")
        used = {row.voice.value for row in self.speakers}
        voice = next((v for v in self._cast if v not in used and v in self.voices), AUTO)
        with self.rows:
            self.speakers.append(SpeakerRow(self, name, voice))
        self._enable()

    def remove(self, row: SpeakerRow) -> None:
        if len(self.speakers) <= 1:
            return
        self.speakers.remove(row)
        self.rows.remove(row.root)
        self._enable()

    def _enable(self) -> None:
        self.add_button.set_enabled(len(self.speakers) < MAX_SPEAKERS)
        for row in self.speakers:
            row.remove.set_enabled(len(self.speakers) > 1)

    async def preview(self, row: SpeakerRow) -> None:
        name = (row.name.value or "").strip() or "your host"
        try:
            speech = await self._tts.synthesize(
                self._principal, SynthesizeRequest(text=PREVIEW.format(name=name), voice=row.chosen_voice)
            )
        except DomainError as exc:
            ui.notify(exc.message, type="negative", multi_line=True)
            return
        self.player.clear()
        with self.player:
            source = "data:audio/mpeg;base64," + base64.b64encode(speech.data).decode()
            ui.audio(source, autoplay=True).classes("w-full").mark("podcast-preview-audio")

    def request(self) -> PodcastRequest | None:
        """The request the form describes, or None after saying what is missing."""
        try:
            return self._request()
        except RefusedError as refused:
            ui.notify(str(refused), type="warning")
            return None

    def _request(self) -> PodcastRequest:
        topic: str | None = None
        text: str | None = None
        resource_ids: list[str] | None = None
        source = self.source.value
        if source == "topic":
            topic = (self.topic.value or "").strip()
            if not topic:
                raise RefusedError("Say what the podcast should be about.")
        elif source == "text":
            text = self.text.value or ""
            if not text.strip():
                raise RefusedError("Paste the text the podcast should talk about.")
        else:
            resource_ids = list(self.resources.value or []) if self.resources is not None else []
            if not resource_ids:
                raise RefusedError("Choose at least one of your resources.")
            topic = ((self.focus.value if self.focus is not None else "") or "").strip() or None
        names = [(row.name.value or "").strip() for row in self.speakers]
        if not all(names):
            raise RefusedError("Give every speaker a name.")
        if len({name.casefold() for name in names}) != len(names):
            raise RefusedError("Give the speakers different names.")
        try:
            return PodcastRequest(
                title=(self.title.value or "").strip() or None, topic=topic, text=text,
                rag_resource_ids=resource_ids, length=self.length.value,
                speakers=[SpeakerIn(name=name, voice=row.chosen_voice) for name, row in zip(names, self.speakers,
                                                                                            strict=True)],
            )  # fmt: skip
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
            job = await self._podcasts.submit(self._principal, request)
        except DomainError as exc:
            ui.notify(f"The podcast was not started: {exc.message}", type="negative", multi_line=True)
            return
        finally:
            self.generate.enable()
        await self._on_submitted(job)


class RefusedError(ValueError):
    """The form is not complete: the message says what is missing."""


# -- the podcast -----------------------------------------------------------------------------------------------------


class TranscriptLine:
    """One line: who says it and when (a button that plays from there), what they say, the sources it cites, and
    an editor that speaks new text in its place."""

    def __init__(self, player: PodcastPlayer, line: PodcastLine, color: str) -> None:
        self._player = player
        self.line = line
        self.root = ui.element("div").classes("podcast-line w-full").mark("podcast-line", f"podcast-line-{line.index}")
        self.root.props["data-index"] = str(line.index)
        with self.root:
            with ui.row().classes("w-full items-center no-wrap gap-2"):
                ui.label(line.speaker).classes(f"text-sm font-semibold text-{color}").mark("podcast-line-speaker")
                self.time = ui.button("").props("flat dense no-caps color=grey-8")
                self.time.classes("podcast-time").mark("podcast-line-time")
                ui.space()
                self.edit_button = named(ui.button(icon="edit", on_click=self.open), f"Edit line {line.index + 1}")
                self.edit_button.props("flat round dense size=sm color=grey-7").tooltip("Edit this line")
                self.edit_button.mark("podcast-line-edit", f"podcast-line-edit-{line.index}")
            self.text = ui.label(line.text).classes("podcast-line-text").mark("podcast-line-text")
            if line.citations:
                with ui.row().classes("gap-1 items-center"):
                    for citation in line.citations:
                        chip = ui.button(cited(citation), on_click=lambda c=citation: player.open_source(c))
                        chip.props("flat dense no-caps color=primary").classes("podcast-cite")
                        chip.mark("podcast-citation")
            with ui.column().classes("podcast-edit w-full gap-2 pt-2") as self.editor:
                self.draft = ui.textarea("New text", value=line.text).props("outlined autogrow maxlength=1000")
                self.draft.classes("w-full").mark("podcast-line-draft", f"podcast-line-draft-{line.index}")
                with ui.row().classes("gap-2 items-center"):
                    self.respeak = ui.button("Re-synthesise", icon="record_voice_over", on_click=self.save)
                    self.respeak.props("no-caps").mark("podcast-line-save", f"podcast-line-save-{line.index}")
                    ui.button("Cancel", on_click=self.close).props("flat no-caps").mark("podcast-line-cancel")
                    self.spinner = ui.spinner(size="sm")
                    self.spinner.set_visibility(False)
        self.show(line)

    def show(self, line: PodcastLine) -> None:
        """The line as it is now (after an edit: its text, and its times moved), its editor closed."""
        self.line = line
        self.root.props["data-start"] = f"{line.start_s:.3f}"
        self.root.props["data-end"] = f"{line.end_s:.3f}"
        self.time.set_text(clock(line.start_s))
        self.time.props["data-seek"] = f"{line.start_s:.3f}"
        named(self.time, f"Play from {clock(line.start_s)}")
        self.text.set_text(line.text)
        self.editor.set_visibility(False)

    def open(self) -> None:
        self.draft.set_value(self.line.text)
        self.editor.set_visibility(True)
        self.draft.run_method("focus")

    def close(self) -> None:
        self.editor.set_visibility(False)

    async def save(self) -> None:
        if not self.respeak.enabled:
            return
        try:
            edit = LineEdit(text=self.draft.value or "")
        except ValidationError:
            ui.notify("Write the line's new text (at most 1,000 characters).", type="warning")
            return
        self.respeak.disable()
        self.spinner.set_visibility(True)
        try:
            await self._player.edit(self.line.index, edit)
        finally:
            self.respeak.enable()
            self.spinner.set_visibility(False)


class PodcastPlayer:
    """A finished podcast: its title, the player, Download, chapters and the transcript."""

    def __init__(self, podcasts: PodcastService, principal: Principal, podcast: PodcastRead,
                 passages: PassagePanel | None) -> None:  # fmt: skip
        self._podcasts = podcasts
        self._principal = principal
        self._passages = passages
        self.podcast = podcast
        self._colors = {s.name: SPEAKER_COLORS[n % len(SPEAKER_COLORS)] for n, s in enumerate(podcast.speakers)}
        with ui.card().classes("podcast-view w-full gap-3").mark("podcast") as self.root:
            with ui.column().classes("gap-0 w-full"):
                ui.label(podcast.title).classes("text-xl font-semibold break-words").mark("podcast-title")
                self.meta = ui.label("").classes("text-sm text-grey-7").mark("podcast-meta")
            self.audio = ui.audio(audio_url(podcast)).classes("w-full").mark("podcast-audio")
            self.audio.props("preload=metadata")
            with ui.row().classes("items-center gap-2"):
                self.download = ui.link("Download MP3", audio_url(podcast)).props("download").mark("podcast-download")
                ui.icon("download", size="xs").classes("text-primary")
            ui.label("Chapters").classes("font-medium")
            self.chapters = ui.row().classes("gap-1 w-full").mark("podcast-chapters")
            ui.label("Transcript").classes("font-medium")
            self.transcript = ui.column().classes("w-full gap-1").mark("podcast-transcript")
        self.lines: list[TranscriptLine] = []
        self._show()

    def _show(self) -> None:
        podcast = self.podcast
        names = " & ".join(speaker.name for speaker in podcast.speakers)
        self.meta.set_text(f"{len(podcast.lines)} lines · {clock(podcast.duration_s)} · {names}")
        self.chapters.clear()
        with self.chapters:
            for chapter in podcast.chapters:
                label = f"{chapter.index + 1}. {chapter.title} · {clock(chapter.start_s)}"
                button = named(ui.button(label), f"Play chapter {chapter.index + 1}: {chapter.title}")
                button.props(f"outline dense no-caps color=primary data-seek={chapter.start_s:.3f}")
                button.classes("podcast-chapter").mark("podcast-chapter")
        if len(self.lines) == len(podcast.lines):  # an edit: the same lines, updated in place
            for shown, line in zip(self.lines, podcast.lines, strict=True):
                shown.show(line)
            return
        self.transcript.clear()
        with self.transcript:
            self.lines = [TranscriptLine(self, line, self._color(line.speaker)) for line in podcast.lines]

    def _color(self, speaker: str) -> str:
        return self._colors.get(speaker, SPEAKER_COLORS[0])

    async def open_source(self, citation: Citation) -> None:
        if self._passages is None:
            ui.notify("Resources are turned off on this instance.", type="info")
            return
        await self._passages.open(citation.resource_id, citation.chunk_id)

    async def edit(self, index: int, edit: LineEdit) -> None:
        """Speak line ``index`` again with new text; the player loads the new version, standing at that line."""
        try:
            podcast = await self._podcasts.edit_line(self._principal, self.podcast.id, index, edit)
        except ConflictError:
            ui.notify("The podcast changed meanwhile: reload the page and edit the line again.", type="warning")
            return
        except DomainError as exc:
            ui.notify(f"Line {index + 1} was not spoken again: {exc.message}", type="negative", multi_line=True)
            return
        self.podcast = podcast
        self.audio.set_source(audio_url(podcast))
        self.download.props["href"] = audio_url(podcast)
        self.download.update()
        self._show()
        start = podcast.lines[index].start_s
        ui.run_javascript(f"window.agentPodcast && window.agentPodcast.seekWhenLoaded({self.root.id}, {start:.3f})")
        ui.notify(f"Line {index + 1} is spoken again: the player has the new version.", type="positive")


class PodcastView:
    """The podcast in the URL: its progress while it is made (polled, with Cancel), then the podcast; a plain "not
    found" for an id that is not the user's."""

    def __init__(self, *, podcasts: PodcastService, jobs: JobService, principal: Principal,
                 passages: PassagePanel | None, on_ended: Callable[[], Awaitable[None]]) -> None:  # fmt: skip
        self._podcasts = podcasts
        self._jobs = jobs
        self._principal = principal
        self._passages = passages
        self._on_ended = on_ended
        self.job_id: str | None = None
        self.player: PodcastPlayer | None = None
        self._bar: ui.linear_progress | None = None  # while the job runs
        self._stage: ui.label | None = None
        self._polling = False
        with ui.column().classes("podcast-main w-full gap-4").mark("podcast-main") as self.root:
            self.body = ui.column().classes("w-full gap-4")
            # Outside the body (which is redrawn), so a poll never deletes the timer that runs it.
            self.timer = ui.timer(POLL_S, self._poll, active=False)
        client = ui.context.client
        client.on_disconnect(self.timer.deactivate)
        client.on_connect(lambda: self.timer.activate() if self._following else None)

    @property
    def _following(self) -> bool:
        return self._bar is not None

    async def show(self, job_id: str | None) -> None:
        self.timer.deactivate()
        self.job_id = job_id
        self.player = None
        self._redraw()  # another job's progress card is never reused for this one
        if job_id is None:
            self._redraw()
            with self.body, ui.card().classes("podcast-empty w-full items-center gap-2 py-10"):
                ui.icon("podcasts", size="xl").classes("text-grey-5")
                ui.label("Your podcast appears here").classes("text-lg text-grey-8")
                ui.label("Choose what it is about and who talks, then press Generate.").classes("text-grey-7")
            return
        try:
            job = await self._jobs.get(self._principal, job_id, family=FAMILY)
        except NotFoundError:
            job = None
        if job is None or job.kind != KIND:
            self._not_found()
            return
        await self._render(job)

    def reveal(self) -> None:
        """Bring the podcast into view (on a phone it sits above the form whose button started it)."""
        ui.run_javascript(f"getHtmlElement({self.root.id})?.scrollIntoView({{block: 'start', behavior: 'smooth'}})")

    def _redraw(self) -> None:
        self.body.clear()
        self._bar = self._stage = None

    def _not_found(self) -> None:
        self._redraw()
        with self.body, ui.card().classes("w-full gap-1").mark("podcast-not-found"):
            ui.label("Podcast not found").classes("text-lg font-medium")
            ui.label("There is no podcast of yours with this link.").classes("text-grey-7")

    async def _render(self, job: JobRead) -> None:
        if job.status in ACTIVE:
            self._progress(job)
            self.timer.activate()
            return
        if job.status == "done":
            try:
                podcast = await self._podcasts.get(self._principal, job.id)
            except NotFoundError:
                self._not_found()
                return
            self._redraw()
            with self.body:
                self.player = PodcastPlayer(self._podcasts, self._principal, podcast, self._passages)
            return
        self._redraw()
        with self.body, ui.card().classes("w-full gap-1").mark("podcast-ended"):
            ui.label(job_title(job)).classes("text-lg font-medium break-words")
            if job.status == "cancelled":
                ui.label("You cancelled this podcast.").classes("text-grey-8").mark("podcast-cancelled")
            else:
                reason = job.error.message if job.error is not None else "it stopped"
                what = "was interrupted" if job.status == "interrupted" else "could not be made"
                ui.label(f"The podcast {what}: {reason}.").classes("text-negative break-words").mark("podcast-error")
                ui.label("Change what you need in the form and generate it again.").classes("text-grey-7")

    def _progress(self, job: JobRead) -> None:
        if self._bar is None or self._stage is None:
            self._redraw()
            with self.body, ui.card().classes("w-full gap-2").mark("podcast-progress"):
                with ui.row().classes("w-full items-center no-wrap gap-2"):
                    ui.spinner("audio", size="md", color="primary")
                    with ui.column().classes("gap-0 grow min-w-0"):
                        ui.label("Making your podcast").classes("text-lg font-medium")
                        ui.label(job_title(job)).classes("text-sm text-grey-7 ellipsis w-full")
                    cancel = ui.button("Cancel", icon="close", on_click=self.cancel).props("flat no-caps")
                    cancel.mark("podcast-cancel")
                self._bar = ui.linear_progress(0, show_value=False, size="10px").classes("rounded")
                named(self._bar, "Progress of the podcast").mark("podcast-progress-bar")
                self._stage = ui.label("").classes("text-sm").mark("podcast-stage")
        fraction = overall_fraction(job)
        if fraction is None:
            self._bar.props("indeterminate")
        else:
            self._bar.props(remove="indeterminate")
            self._bar.set_value(fraction)
        self._stage.set_text(describe_progress(job))

    async def _poll(self) -> None:
        if self._polling or self.job_id is None:
            return
        self._polling = True
        polled = self.job_id
        try:
            try:
                job = await self._jobs.get(self._principal, polled, family=FAMILY)
            except NotFoundError:  # deleted meanwhile
                if self.job_id == polled:
                    self.timer.deactivate()
                    self._not_found()
                return
            except Exception:
                log.exception("following podcast job %s failed", polled)
                if self.job_id == polled:
                    self.timer.deactivate()
                    ui.notify("Could not follow the podcast: reload the page to try again.", type="negative")
                return
            if self.job_id != polled:  # another podcast is shown now: this answer is stale
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
        if self.job_id is None:
            return
        try:
            await self._jobs.cancel(self._principal, self.job_id, family=FAMILY)
        except ConflictError:
            pass  # it ended meanwhile: the next poll shows how
        except DomainError as exc:
            ui.notify(exc.message, type="negative")
        await self._poll()


class RecentPodcasts:
    """The user's podcasts, newest first, each with its status; a link opens it."""

    def __init__(self, jobs: JobService, principal: Principal, current: str | None) -> None:
        self._jobs = jobs
        self._principal = principal
        self.current = current
        with ui.card().classes("podcast-recent w-full gap-2").mark("recent-podcasts"):
            ui.label("Recent podcasts").classes("text-lg font-medium")
            self.body = ui.column().classes("w-full gap-1")

    async def refresh(self) -> None:
        found = (await self._jobs.list_jobs(self._principal, family=FAMILY, kind=KIND, limit=10, cursor=None)).items
        self.body.clear()
        with self.body:
            if not found:
                ui.label("None yet.").classes("text-grey-7").mark("no-podcasts")
            for job in found:
                link = ui.link(target=f"/generate/podcast?job={job.id}").classes(
                    "podcast-recent-item row items-center no-wrap gap-2 px-2 py-1 w-full"
                    + (" podcast-recent-item--current" if job.id == self.current else "")
                )
                if job.id == self.current:
                    link.props('aria-current="page"')
                with link.mark("recent-podcast", f"recent-{job.id}"):
                    with ui.column().classes("gap-0 grow min-w-0"):
                        ui.label(job_title(job)).classes("ellipsis w-full").mark("recent-title")
                        ui.label(f"{job.created_at:%-d %b %Y %H:%M} UTC").classes("text-xs text-grey-7")
                    ui.badge(STATUS_TEXT.get(job.status, job.status), color=STATUS_COLORS.get(job.status, "grey"))
