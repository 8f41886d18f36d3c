"""Podcasts: a model writes a dialogue for N speakers (grounded in the user's resources, citations kept), each line is
spoken with its speaker's voice, and the lines are joined with pauses into an MP3 with a transcript and chapters.

A podcast is a job (kind ``podcast``): progress per stage (``sources``, ``script``, ``voices``, ``mixing``) and per
line. The script is written in small structured calls (an outline, then one call per chapter) so each fits the
local model's answer length and its JSON schema constrains it. Each line is loudness-normalised on its own, so an
edited line is spliced into the lossless master in place and only the MP3 is encoded again: the artifact keeps its
id and gets a new version. A line that fails to speak fails the job with its number and reason; nothing is stored
until every line spoke.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import io
import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import soundfile as sf
from mutagen.id3 import CHAP, CTOC, ID3, TIT2, CTOCFlags
from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlmodel import or_, select

from services.artifacts import ArtifactService
from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.clock import Clock, utcnow
from services.credits import CreditService
from services.db.database import Database
from services.db.owned import get_owned
from services.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError
from services.jobs import JobContext, JobKind, JobRead, JobService
from services.llm import ModelRegistry
from services.locks import KeyedLocks
from services.sources import SourcePassage, Sources
from services.tts.audio import decode, encode_wav, join_with_gaps, normalise, resample_samples, to_mp3
from services.tts.engines import Synthesized, TtsUnavailableError, Voice
from services.tts.models import Podcast
from services.tts.schemas import Chapter, Citation, LineEdit, PodcastLine, PodcastRead, PodcastRequest, SpeakerRead
from services.tts.service import TtsService

KIND = "podcast"
SAMPLE_RATE = 24_000  # edge-tts speaks at 24 kHz; the offline engines are resampled up to it
TURN_PAUSE_S = 0.45
CHAPTER_PAUSE_S = 1.2
SOURCE_CHARS = 6_000  # of passages given to the model per chapter (the local model's context is 8k tokens)
# A small model at temperature 0 repeats its lines word for word without it; 1.2 gave five distinct lines where
# 0.6 and 0.9 still repeated (qwen2.5-coder-0.5b, measured with a chapter prompt).
FREQUENCY_PENALTY = 1.2
LINES_AT_ONCE = 2  # lines spoken side by side: the offline engines are programs, one per core
REPEAT_RATIO = 0.8  # lines this alike are one line said twice
LINE_CHARS = 200  # a line is a sentence or two: longer ones let a small model ramble
SHAPES: dict[str, tuple[int, int]] = {"short": (2, 5), "medium": (3, 6), "long": (4, 7)}  # chapters, lines each
LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "sv": "Swedish",
    "ru": "Russian",
    "zh": "Chinese",
    "ja": "Japanese",
}
ScriptEntry = tuple[int, str, str, list[int]]  # chapter, speaker, text, the numbers of the sources it cites
_MARKERS = re.compile(r"\[(\d{1,2})\]")
_UNSPOKEN = re.compile(r"[*_#`~<>|]+")


def _outline_model(chapters: int) -> type[BaseModel]:
    """The episode's plan: a title and exactly ``chapters`` chapter titles, each short."""
    return create_model(
        "Outline",
        __config__=ConfigDict(extra="forbid"),
        title=(str, Field(min_length=1, max_length=100)),
        chapters=(list[Annotated[str, Field(min_length=1, max_length=80)]],
                  Field(min_length=chapters, max_length=chapters)),
    )  # fmt: skip


@dataclass
class Spoken:
    """A line as it will be heard: who, with which voice, its samples (normalised, at the podcast's rate)."""

    speaker: str
    voice: Voice
    engine: str
    text: str
    citations: list[dict[str, Any]]
    chapter: int
    samples: np.ndarray[Any, np.dtype[np.float32]]


class Stopwatch:
    """Seconds spent per stage, kept in the job's result (where the time of a podcast goes)."""

    def __init__(self, timings: dict[str, float]) -> None:
        self._timings = timings

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._timings[stage] = round(self._timings.get(stage, 0.0) + time.perf_counter() - started, 4)


class PodcastService:
    def __init__(
        self,
        *,
        db: Database,
        tts: TtsService,
        jobs: JobService,
        artifacts: ArtifactService,
        credits: CreditService,
        models: ModelRegistry,
        sources: Sources,
        clock: Clock = utcnow,
    ) -> None:
        self._db = db
        self._tts = tts
        self._jobs = jobs
        self._artifacts = artifacts
        self._credits = credits
        self._models = models
        self._sources = sources
        self._clock = clock
        self._edits = KeyedLocks()  # one edit of a podcast at a time in this process

    def job_kind(self) -> JobKind[PodcastRequest]:
        return JobKind(name=KIND, scope=Scope.GENERATION, params=PodcastRequest, run=self._make,
                       family="generation", heavy=True, concurrency=1)  # fmt: skip

    # -- submit ---------------------------------------------------------------------------------------------

    async def submit(self, principal: Principal, request: PodcastRequest) -> JobRead:
        """Check what can be checked before queueing (voices, the model, the resources are the user's, an engine
        can speak), then queue the job."""
        require_scope(principal, Scope.GENERATION)
        for speaker in request.speakers:
            if speaker.voice is not None:
                self._tts.voice(speaker.voice)
        self._models.resolve(request.model)
        if request.rag_resource_ids:  # each the user's and ready (404, 409), no text read yet
            await self._sources.passages(principal, request.rag_resource_ids, max_chars=0)
        await self._tts.cast(len(request.speakers), request.language, request.engine)  # 503 when none can speak
        return await self._jobs.submit(principal, KIND, request.model_dump(exclude_none=True))

    # -- the job --------------------------------------------------------------------------------------------

    async def _make(self, params: PodcastRequest, job: JobContext) -> dict[str, Any]:
        model = self._models.resolve(params.model)
        chapters_wanted, lines_each = SHAPES[params.length]
        passages = await self._passages(params, job)
        voices = await self._voices(params)
        names = [speaker.name for speaker in params.speakers]

        timings: dict[str, float] = {}
        clock = Stopwatch(timings)
        with clock("script"):
            job.progress("script", 0, chapters_wanted + 1, "outline")
            planning = self._outline_prompt(params, passages, chapters_wanted)
            outline = await job.calls.complete_json(job.payer, model, planning, _outline_model(chapters_wanted))
            titles = [str(t).strip() or f"Part {n}" for n, t in enumerate(outline.chapters, 1)]  # type: ignore[attr-defined]
            title = params.title or outline.title.strip() or "Podcast"  # type: ignore[attr-defined]
            script: list[ScriptEntry] = []
            line_model = _line_model(lines_each, len(passages))
            for chapter, chapter_title in enumerate(titles):
                job.progress("script", chapter + 1, chapters_wanted + 1, chapter_title)
                turns = [names[(len(script) + n) % len(names)] for n in range(lines_each)]
                messages = self._chapter_prompt(params, passages, title, titles, chapter, turns, script)
                written = await job.calls.complete_json(job.payer, model, messages, line_model,
                                                        frequency_penalty=FREQUENCY_PENALTY)  # fmt: skip
                said = [text for _, _, text, _ in script]
                for line in written.lines:  # type: ignore[attr-defined]
                    unnamed = _without_speaker(line.text, names)
                    text, cited = _spoken_text(_whole_sentences(unnamed), len(passages))
                    sources = sorted({n for n in (*line.sources, *cited) if 1 <= n <= len(passages)})
                    if text and not _repeats(text, said):  # a small model repeats itself: once is enough
                        # Turns go by the lines kept, so a dropped repeat never gives one host two lines running.
                        script.append((chapter, names[len(script) % len(names)], text, sources))
                        said.append(text)
        if not script:
            raise DomainError("the model wrote no line to speak", code="empty_script")

        with clock("voices"):
            spoken = await self._speak_all(script, voices, passages, job)
        with clock("mixing"):
            job.progress("mixing", 0, 1, "joining the lines")
            lines = [line.samples for line in spoken]
            master, spans = await asyncio.to_thread(_mix, lines, [line.chapter for line in spoken])
            rows = [_line_row(index, line, span) for index, (line, span) in enumerate(zip(spoken, spans, strict=True))]
            chapters = _chapters(dict(enumerate(titles)), rows)
            mp3, flac = await _encoded(master, title, chapters)
            job.progress("mixing", 1, 1, "saved")
        # Stored whole even if the job is cancelled meanwhile: both files and the transcript, or the job fails.
        stored = asyncio.ensure_future(self._store(job, title, names, voices, rows, chapters, passages, spans, mp3,
                                                   flac))  # fmt: skip
        row = await asyncio.shield(stored)
        return {"podcast_id": row.id, "artifact_id": row.audio_artifact_id, "title": title, "lines": len(spoken),
                "duration_s": round(row.duration_s, 3), "stage_s": timings}  # fmt: skip

    async def _store(self, job: JobContext, title: str, names: list[str], voices: dict[str, Voice],
                     rows: list[dict[str, Any]], chapters: list[dict[str, Any]], passages: list[SourcePassage],
                     spans: list[tuple[float, float]], mp3: bytes, flac: bytes) -> Podcast:  # fmt: skip
        slug = _slug(title)
        audio = await job.artifact(kind="audio", filename=f"{slug}.mp3", media_type="audio/mpeg", data=mp3,
                                   title=title)  # fmt: skip
        lossless = await job.artifact(kind="audio_master", filename=f"{slug}.flac", media_type="audio/flac",
                                      data=flac, title=f"{title} (lossless)")  # fmt: skip
        now = self._clock()
        row = Podcast(
            id=job.job_id, user_id=job.user_id, title=title[:200],
            speakers=[{"name": n, "voice": voices[n].id} for n in names], lines=rows, chapters=chapters,
            sources=[p.citation(n) for n, p in enumerate(passages, 1)], sample_rate=SAMPLE_RATE,
            duration_s=spans[-1][1], audio_artifact_id=audio.id, master_artifact_id=lossless.id,
            created_at=now, updated_at=now,
        )  # fmt: skip
        async with self._db.transaction() as session:
            session.add(row)
        return row

    async def _passages(self, params: PodcastRequest, job: JobContext) -> list[SourcePassage]:
        if not params.rag_resource_ids:
            return []
        job.progress("sources", 0, 1, "reading your resources")
        found = await self._sources.passages(job.principal, params.rag_resource_ids, query=params.topic,
                                             max_chars=SOURCE_CHARS)  # fmt: skip
        job.progress("sources", 1, 1, f"{len(found)} passages")
        return found

    async def _voices(self, params: PodcastRequest) -> dict[str, Voice]:
        """Each speaker's voice: the one asked for, else one cast that no other speaker has."""
        explicit = {speaker.name: self._tts.voice(speaker.voice) for speaker in params.speakers if speaker.voice}
        missing = [speaker.name for speaker in params.speakers if not speaker.voice]
        if missing:
            cast = await self._tts.cast(len(params.speakers) + len(explicit), params.language, params.engine)
            free = [voice for voice in cast if voice not in explicit.values()] or cast
            explicit.update({name: free[n % len(free)] for n, name in enumerate(missing)})
        return explicit

    async def _speak_all(self, script: list[ScriptEntry], voices: dict[str, Voice],
                         passages: list[SourcePassage], job: JobContext) -> list[Spoken]:  # fmt: skip
        """Every line, ``LINES_AT_ONCE`` at a time (the offline engines are programs: one per core), paid at once
        for the whole script; the first line that fails cancels the others and releases the hold."""
        chars = sum(len(text) for _, _, text, _ in script)
        hold = await self._credits.hold(job.user_id, at_most=self._tts.price_micro(chars), cause_type="run",
                                        cause_id=job.job_id)  # fmt: skip
        spoken: list[Spoken | None] = [None] * len(script)
        turns = asyncio.Semaphore(LINES_AT_ONCE)
        failures: dict[int, Exception] = {}

        async def speak(index: int, entry: ScriptEntry) -> None:
            chapter, speaker, text, cited = entry
            async with turns:
                job.progress("voices", sum(s is not None for s in spoken), len(script),
                             f"line {index + 1} of {len(script)}: {speaker}")  # fmt: skip
                try:
                    spoken[index] = await self._speak_line(index, chapter, speaker, text, voices[speaker],
                                                           [passages[n - 1].citation(n) for n in cited])  # fmt: skip
                except Exception as exc:
                    failures[index] = exc
                    raise

        try:
            async with asyncio.TaskGroup() as group:
                for index, entry in enumerate(script):
                    group.create_task(speak(index, entry))
            job.progress("voices", len(script), len(script), "every line spoken")
        except BaseExceptionGroup as failed:  # the earliest line that failed, as itself
            await self._credits.release(hold)
            raise (failures[min(failures)] if failures else failed.exceptions[0]) from None
        except BaseException:
            await self._credits.release(hold)
            raise
        await self._credits.settle(hold, self._tts.price_micro(chars))
        return [line for line in spoken if line is not None]

    async def _speak_line(self, index: int, chapter: int, speaker: str, text: str, voice: Voice,
                          citations: list[dict[str, Any]]) -> Spoken:  # fmt: skip
        try:
            used, clip = await self._tts.speak(text, voice)
        except TtsUnavailableError as exc:
            raise TtsUnavailableError(f"line {index + 1} ({speaker}) could not be spoken: {exc.message}",
                                      code="line_failed") from exc  # fmt: skip
        samples = await asyncio.to_thread(_prepared, clip)
        return Spoken(speaker=speaker, voice=used, engine=clip.engine, text=text, citations=citations,
                      chapter=chapter, samples=samples)  # fmt: skip

    # -- prompts --------------------------------------------------------------------------------------------

    def _material(self, params: PodcastRequest, passages: list[SourcePassage]) -> str:
        parts = []
        if params.topic:
            parts.append(f"Topic: {params.topic}")
        if params.text:
            parts.append("Material:\n" + _excerpt(params.text, SOURCE_CHARS))
        if passages:
            parts.append("Sources:\n" + "\n".join(f"[{n}] ({p.title}) {p.text}" for n, p in enumerate(passages, 1)))
        return "\n\n".join(parts)

    def _outline_prompt(
        self, params: PodcastRequest, passages: list[SourcePassage], chapters: int
    ) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": "You plan short podcast episodes. Reply with JSON only."},
            {"role": "user", "content": f"{self._material(params, passages)}\n\nPlan a podcast episode about this "
             f"in {_language(params.language)}: a short title and exactly {chapters} chapter titles, each a few "
             "words."},
        ]  # fmt: skip

    def _chapter_prompt(self, params: PodcastRequest, passages: list[SourcePassage], title: str, titles: list[str],
                        chapter: int, turns: list[str], script: list[ScriptEntry]) -> list[dict[str, Any]]:  # fmt: skip
        names = [speaker.name for speaker in params.speakers]
        hosts = " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]
        earlier = "\n".join(f"{speaker}: {text}" for _, speaker, text, _ in script[-4:])
        cite = (" When a line uses a fact from a source, put the source's number in that line's sources."
                if passages else "")  # fmt: skip
        return [
            {"role": "system", "content": f"You write podcast scripts: a natural spoken conversation between {hosts}"
             f", in {_language(params.language)}. Each line is one or two short sentences someone says aloud: no "
             "stage directions, no names before the text, no markdown, no lists, no emojis. Every line adds "
             f"something new; never repeat a sentence.{cite} Reply with JSON only."},
            {"role": "user", "content": f"{self._material(params, passages)}\n\nEpisode: {title}. Chapters: "
             + "; ".join(f"{n}. {t}" for n, t in enumerate(titles, 1))
             + (f"\n\nThe conversation so far ends with:\n{earlier}" if earlier else "")
             + f"\n\nWrite chapter {chapter + 1}, \"{titles[chapter]}\": exactly {len(turns)} lines, spoken in "
             f"this order: {', '.join(turns)}"
             + (". Open the episode with a welcome." if chapter == 0 else ".")
             + (" End the episode with a goodbye." if chapter == len(titles) - 1 else "")},
        ]  # fmt: skip

    # -- reading and editing ---------------------------------------------------------------------------------

    async def get(self, principal: Principal, podcast_id: str) -> PodcastRead:
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            row = await get_owned(session, Podcast, podcast_id, principal.user.id, missing="podcast not found")
        return await self._read(principal, row)

    async def of_artifact(self, principal: Principal, artifact_id: str) -> PodcastRead:
        """The podcast whose audio (or master) is this artifact: its transcript."""
        require_scope(principal, Scope.GENERATION)
        async with self._db.transaction(readonly=True) as session:
            row = (await session.exec(select(Podcast).where(
                Podcast.user_id == principal.user.id,
                or_(Podcast.audio_artifact_id == artifact_id, Podcast.master_artifact_id == artifact_id),
            ))).first()  # fmt: skip
        if row is None:
            raise NotFoundError("podcast not found")
        return await self._read(principal, row)

    async def edit_line(self, principal: Principal, podcast_id: str, index: int, edit: LineEdit) -> PodcastRead:
        """Speak one line again with new text (or another voice) and splice it into the master in place: the lines
        after it move by the difference, the MP3 is encoded again under the same artifact id. One edit of a
        podcast at a time in this process; across processes the row's version decides (409 to the later one,
        which changes nothing and pays nothing)."""
        require_scope(principal, Scope.GENERATION)
        user_id = principal.user.id
        async with self._db.transaction(readonly=True) as session:  # only owners' podcasts ever get a lock
            await get_owned(session, Podcast, podcast_id, user_id, missing="podcast not found")
        async with self._edits.hold(podcast_id):
            return await self._edit_line(principal, podcast_id, index, edit)

    async def _edit_line(self, principal: Principal, podcast_id: str, index: int, edit: LineEdit) -> PodcastRead:
        user_id = principal.user.id
        async with self._db.transaction(readonly=True) as session:
            row = await get_owned(session, Podcast, podcast_id, user_id, missing="podcast not found")
        if not 0 <= index < len(row.lines):
            raise NotFoundError("line not found")
        line = row.lines[index]
        voice = self._tts.voice(edit.voice or line["voice"])
        text, _ = _spoken_text(edit.text, 0)
        if not text:
            raise ValidationFailedError("the line has nothing to speak", code="empty_text")
        master_path = (await self._artifacts.download(principal, row.master_artifact_id)).path
        price = self._tts.price_micro(len(text))
        hold = await self._credits.hold(user_id, at_most=price, cause_type="run", cause_id=podcast_id)
        try:
            spoken = await self._speak_line(index, line["chapter"], line["speaker"], text, voice, line["citations"])
            master, spans = await asyncio.to_thread(_splice, master_path, row.lines, index, spoken.samples)
            lines = [dict(old, start_s=round(start, 3), end_s=round(end, 3))
                     for old, (start, end) in zip(row.lines, spans, strict=True)]  # fmt: skip
            lines[index].update(text=text, voice=spoken.voice.id, engine=spoken.engine)
            chapters = _chapters({c["index"]: c["title"] for c in row.chapters}, lines)
            mp3, flac = await _encoded(master, row.title, chapters)
            # The transcript and both files change together or not at all.
            async with self._db.transaction(exclusive=f"podcast:{podcast_id}") as session:
                current = await get_owned(session, Podcast, podcast_id, user_id, missing="podcast not found")
                if current.version != row.version:
                    raise ConflictError("the podcast changed meanwhile: reload it", code="edit_conflict")
                await self._artifacts.replace(user_id, row.master_artifact_id, flac, session=session)
                await self._artifacts.replace(user_id, row.audio_artifact_id, mp3, session=session)
                current.lines, current.chapters = lines, chapters
                current.duration_s = spans[-1][1]
                current.version += 1
                current.updated_at = self._clock()
                session.add(current)
        except BaseException:
            await self._credits.release(hold)
            raise
        await self._credits.settle(hold, price)
        return await self._read(principal, current)

    async def _read(self, principal: Principal, row: Podcast) -> PodcastRead:
        audio = await self._artifacts.get(principal, row.audio_artifact_id)
        master = await self._artifacts.get(principal, row.master_artifact_id)
        return PodcastRead(
            id=row.id, title=row.title, speakers=[SpeakerRead(**s) for s in row.speakers],
            lines=[PodcastLine(**line) for line in row.lines], chapters=[Chapter(**c) for c in row.chapters],
            sources=[Citation(**s) for s in row.sources], duration_s=row.duration_s, sample_rate=row.sample_rate,
            audio=audio, master=master, version=row.version, created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip


# -- the script's shape ----------------------------------------------------------------------------------------


def _line_model(lines: int, sources: int) -> type[BaseModel]:
    """The JSON a chapter is written in: exactly ``lines`` lines (the speakers take them in turn, so a small model
    cannot leave one out or talk to itself), each bounded to a sentence or two, its sources numbers of the passages
    given (none when there are none)."""
    line = create_model(
        "ScriptLine",
        __config__=ConfigDict(extra="forbid"),
        text=(str, Field(min_length=1, max_length=LINE_CHARS)),
        sources=(list[int], Field(default_factory=list, max_length=3) if sources else Field(max_length=0)),
    )
    return create_model(
        "ScriptChapter",
        __config__=ConfigDict(extra="forbid"),
        lines=(list[line], Field(min_length=lines, max_length=lines)),  # type: ignore[valid-type]
    )


def _without_speaker(text: str, names: list[str]) -> str:
    """A line as said: a small model copies the "Name: " of the lines it was shown; the voice says who speaks."""
    prefix = re.compile(r"^\s*(?:" + "|".join(re.escape(name) for name in names) + r")\s*:\s*", re.IGNORECASE)
    while (stripped := prefix.sub("", text, count=1)) != text:
        text = stripped
    return text


def _repeats(text: str, said: list[str]) -> bool:
    """Whether a line says (nearly) what an earlier one said: a small model cycles through a few lines."""
    folded = text.casefold()
    return any(difflib.SequenceMatcher(None, folded, earlier.casefold()).ratio() > REPEAT_RATIO for earlier in said)


def _excerpt(text: str, limit: int) -> str:
    """Material longer than the model can read, as paragraphs spread evenly over it (its start, middle and end
    all heard) up to ``limit`` characters."""
    if len(text) <= limit:
        return text
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(paragraphs) < 2:
        return text[:limit]
    average = max(1, len(text) // len(paragraphs))
    wanted = max(1, limit // average)
    step = len(paragraphs) / wanted
    picked: list[str] = []
    used = 0
    for n in range(wanted):
        paragraph = paragraphs[int(n * step)][: limit - used]
        if not paragraph:
            break
        picked.append(paragraph)
        used += len(paragraph) + 2
    return "\n\n".join(picked)


def _whole_sentences(text: str) -> str:
    """A line cut at the schema's length ends at its last full sentence (when it has one)."""
    if len(text) < LINE_CHARS - 1:
        return text
    ends = [text.rfind(mark) for mark in ".!?"]
    return text[: max(ends) + 1] if max(ends) > LINE_CHARS // 3 else text


def _spoken_text(text: str, sources: int) -> tuple[str, list[int]]:
    """What is said (markup and citation marks taken out) and the sources it cited as ``[n]``."""
    cited = [int(n) for n in _MARKERS.findall(text) if 1 <= int(n) <= sources]
    spoken = " ".join(_UNSPOKEN.sub(" ", _MARKERS.sub("", text)).split())
    return re.sub(r" ([.,!?;:])", r"\1", spoken), cited


def _language(code: str) -> str:
    return LANGUAGES.get(code.split("-")[0], code)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "podcast"


# -- audio --------------------------------------------------------------------------------------------------------


def _prepared(clip: Synthesized) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A line at the podcast's rate and loudness (each line on its own, so an edited one matches the rest)."""
    samples, rate = decode(normalise(clip.wav))
    return resample_samples(samples, rate, SAMPLE_RATE).astype(np.float32)


def _mix(
    lines: list[np.ndarray[Any, np.dtype[np.float32]]], chapters: list[int]
) -> tuple[bytes, list[tuple[float, float]]]:
    """The lines joined: a turn's pause between lines of a chapter, a longer one where a chapter begins."""
    gaps = [CHAPTER_PAUSE_S if before != after else TURN_PAUSE_S for before, after in itertools.pairwise(chapters)]
    return join_with_gaps(lines, gaps, SAMPLE_RATE)


def _splice(master_path: Any, lines: list[dict[str, Any]], index: int,
            samples: np.ndarray[Any, np.dtype[np.float32]]) -> tuple[bytes, list[tuple[float, float]]]:  # fmt: skip
    """The master with line ``index`` replaced by ``samples``; every line's new span."""
    audio, rate = sf.read(master_path, dtype="float32")
    start = round(lines[index]["start_s"] * rate)
    end = round(lines[index]["end_s"] * rate)
    joined = np.concatenate([audio[:start], samples, audio[end:]])
    shift = (len(samples) - (end - start)) / rate
    spans = []
    for number, line in enumerate(lines):
        if number < index:
            spans.append((line["start_s"], line["end_s"]))
        elif number == index:
            spans.append((line["start_s"], (start + len(samples)) / rate))
        else:
            spans.append((line["start_s"] + shift, line["end_s"] + shift))
    return encode_wav(joined, rate), spans


async def _encoded(wav: bytes, title: str, chapters: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """The MP3 and the lossless FLAC, encoded side by side (each in a worker thread: both release the GIL)."""
    mp3, flac = await asyncio.gather(asyncio.to_thread(_mp3, wav, title, chapters), asyncio.to_thread(_flac, wav))
    return mp3, flac


def _mp3(wav: bytes, title: str, chapters: list[dict[str, Any]]) -> bytes:
    """The MP3 with its title and chapter marks as ID3 tags (CTOC and CHAP frames, which podcast players show)."""
    encoded = io.BytesIO(to_mp3(wav))
    tags = ID3()
    tags.add(TIT2(encoding=3, text=[title]))
    ids = [f"chp{mark['index']}" for mark in chapters]
    tags.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                  sub_frames=[TIT2(encoding=3, text=[title])]))  # fmt: skip
    for element_id, mark in zip(ids, chapters, strict=True):
        named = [TIT2(encoding=3, text=[mark["title"]])]
        tags.add(CHAP(element_id=element_id, start_time=round(mark["start_s"] * 1000),
                      end_time=round(mark["end_s"] * 1000), sub_frames=named))  # fmt: skip
    tags.save(encoded)
    return encoded.getvalue()


def _flac(wav: bytes) -> bytes:
    samples, rate = decode(wav)
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC", subtype="PCM_16")
    return out.getvalue()


def _line_row(index: int, line: Spoken, span: tuple[float, float]) -> dict[str, Any]:
    return {"index": index, "chapter": line.chapter, "speaker": line.speaker, "voice": line.voice.id,
            "engine": line.engine, "text": line.text, "start_s": round(span[0], 3), "end_s": round(span[1], 3),
            "citations": line.citations}  # fmt: skip


def _chapters(titles: dict[int, str], lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chapter marks from the lines (``index`` is the chapter's number in the lines): each starts at its first line
    and ends at its last; a chapter the model left empty has none."""
    marks = []
    for chapter, title in sorted(titles.items()):
        own = [line for line in lines if line["chapter"] == chapter]
        if own:
            marks.append({"index": chapter, "title": title, "first_line": own[0]["index"],
                          "start_s": own[0]["start_s"], "end_s": own[-1]["end_s"]})  # fmt: skip
    return marks
