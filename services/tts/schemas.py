"""TTS API in and out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.artifacts import ArtifactRead

AudioFormat = Literal["mp3", "wav"]
VoiceId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class VoiceRead(BaseModel):
    id: str = Field(description="engine-prefixed: espeak:en-us+f3, edge:en-US-AriaNeural")
    engine: str
    language: str
    gender: Literal["female", "male", "neutral"]
    name: str
    available: bool = Field(description="its engine can speak now")
    sample: str = Field(description="where to hear it: a short MP3 of this voice introducing itself")


class EngineRead(BaseModel):
    name: str
    online: bool = Field(description="needs the network (edge-tts)")
    available: bool
    reason: str | None = Field(description="why it cannot speak now")
    voices: int


class VoiceList(BaseModel):
    default_voice: str | None = Field(description="what `voice` defaults to: the preferred engine that is available")
    engines: list[EngineRead]
    voices: list[VoiceRead]


class SynthesizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, description="the text to speak (at most AGENT_UI_TTS__MAX_CHARS characters)")
    voice: VoiceId | None = Field(default=None, description="a voice id from /tts/voices; default: your voice "
                                                            "(GET /tts/preferences), else default_voice")  # fmt: skip
    rate: float = Field(default=1.0, ge=0.5, le=2.0, description="speed, 1 is normal; default without `voice`: "
                                                                 "your rate (GET /tts/preferences)")  # fmt: skip
    pitch: float = Field(default=0.0, ge=-12, le=12, description="semitones up or down")
    format: AudioFormat = "mp3"


class VoicePreferenceRead(BaseModel):
    voice: str | None = Field(description="the voice you chose (Settings → Voice); null: none chosen")
    rate: float = Field(description="your speed, 1 is normal")
    effective_voice: str | None = Field(
        description="who speaks when you name no voice: yours while an engine still has it, else default_voice of "
        "/tts/voices (null when no engine can speak now)"
    )


class VoicePreferenceUpdate(BaseModel):
    """Replaces your preference: a voice left out or null clears it (the default voice speaks)."""

    model_config = ConfigDict(extra="forbid")
    voice: VoiceId | None = Field(default=None, description="a voice id from /tts/voices; null: the default voice")
    rate: float = Field(default=1.0, ge=0.5, le=2.0, description="speed, 1 is normal")


# -- podcasts --------------------------------------------------------------------------------------------------

SpeakerName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                               pattern=r"^[^\n\r\t\[\]{}]+$")]  # fmt: skip
ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=32)]
PodcastLength = Literal["short", "medium", "long"]
EngineName = Literal["edge", "flite", "espeak"]


class SpeakerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: SpeakerName
    voice: VoiceId | None = Field(default=None, description="a voice id from /tts/voices; default: one is cast")


def _two_hosts() -> list[SpeakerIn]:
    return [SpeakerIn(name="Alex"), SpeakerIn(name="Sam")]


class PodcastRequest(BaseModel):
    """What to talk about (text, a topic, your resources, or a topic over resources) and who talks."""

    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=50_000)] | None = Field(
        default=None, description="the material to discuss"
    )
    topic: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] | None = Field(
        default=None, description="what to talk about; with resources, what to look for in them"
    )
    rag_resource_ids: list[ResourceId] | None = Field(
        default=None, min_length=1, max_length=20, description="ready resources to ground the script in (cited)"
    )
    speakers: list[SpeakerIn] = Field(default_factory=_two_hosts, min_length=1, max_length=4)
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")] = Field(
        default="en", description="of the script and of the voices cast for speakers without one"
    )
    length: PodcastLength = Field(default="short", description="short: 2 chapters of 5 lines; medium: 3 of 6; "
                                                               "long: 4 of 7")  # fmt: skip
    engine: EngineName | None = Field(default=None, description="cast voices of this engine (default: the first "
                                                                "that can speak now)")  # fmt: skip
    model: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="the model that writes the script (default: the default model)"
    )

    @model_validator(mode="after")
    def _has_material_and_distinct_speakers(self) -> PodcastRequest:
        if self.text is None and self.topic is None and not self.rag_resource_ids:
            raise ValueError("give text, a topic or rag_resource_ids")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        names = [speaker.name.casefold() for speaker in self.speakers]
        if len(set(names)) != len(names):
            raise ValueError("speakers need different names")
        return self


class Citation(BaseModel):
    n: int = Field(description="the source's number in `sources`")
    resource_id: str
    chunk_id: str
    title: str
    page: int | None = None
    heading: str | None = None


class SpeakerRead(BaseModel):
    name: str
    voice: str


class PodcastLine(BaseModel):
    index: int = Field(description="the line's position, from 0 (`PATCH .../lines/{index}`)")
    chapter: int
    speaker: str
    voice: str = Field(description="the voice that spoke it")
    engine: str
    text: str
    start_s: float
    end_s: float
    citations: list[Citation] = Field(default_factory=list)


class Chapter(BaseModel):
    index: int
    title: str
    first_line: int
    start_s: float
    end_s: float


class PodcastRead(BaseModel):
    id: str = Field(description="the job's id")
    title: str
    speakers: list[SpeakerRead]
    lines: list[PodcastLine]
    chapters: list[Chapter]
    sources: list[Citation] = Field(description="every passage the script was given, by number")
    duration_s: float
    sample_rate: int
    audio: ArtifactRead = Field(description="the MP3 (its id stays; `version` grows with each edit)")
    master: ArtifactRead = Field(description="the lossless FLAC an edited line is spliced into")
    version: int
    created_at: datetime
    updated_at: datetime


class LineEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    voice: VoiceId | None = Field(default=None, description="another voice for this line (default: as before)")
