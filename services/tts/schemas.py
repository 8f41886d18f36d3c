"""TTS API in and out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

AudioFormat = Literal["mp3", "wav"]
VoiceId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class VoiceRead(BaseModel):
    id: str = Field(description="engine-prefixed: espeak:en-us+f3, edge:en-US-AriaNeural")
    engine: str
    language: str
    gender: Literal["female", "male", "neutral"]
    name: str
    available: bool = Field(description="its engine can speak now")


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
    voice: VoiceId | None = Field(default=None, description="a voice id from /tts/voices; default: default_voice")
    rate: float = Field(default=1.0, ge=0.5, le=2.0, description="speed, 1 is normal")
    pitch: float = Field(default=0.0, ge=-12, le=12, description="semitones up or down")
    format: AudioFormat = "mp3"
