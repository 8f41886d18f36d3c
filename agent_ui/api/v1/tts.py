"""Text to speech: the voices (with which engines can speak now), each user's voice, and synthesis to MP3 or WAV."""

from __future__ import annotations

from fastapi import Query, Response

from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from services.auth import Scope
from services.container import Services
from services.tts import TtsService
from services.tts.schemas import SynthesizeRequest, VoiceList, VoicePreferenceRead, VoicePreferenceUpdate

router = api_router(
    prefix="/tts",
    tags=["tts"],
    guard=RequireScope(Scope.TTS),
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        503: documented_error(
            "TTS is disabled (`tts_disabled`), or no engine can speak now (`tts_unavailable`, "
            "naming each engine's reason, e.g. the package to install)"
        ),
    },
)


def tts(services: Services) -> TtsService:
    return services.get(TtsService, "TTS is disabled on this instance", code="tts_disabled")


@router.get("/voices")
async def list_voices(services: ServicesDep) -> VoiceList:
    """Every engine's voices, which engines can speak now (and why not), and the default voice."""
    return await tts(services).voices()


@router.get("/preferences")
async def get_preferences(principal: CurrentPrincipal, services: ServicesDep) -> VoicePreferenceRead:
    """Your voice (null when you chose none), your rate, and `effective_voice`: who speaks when you name no voice
    (Read aloud in chat, `POST /tts/synthesize` without `voice`)."""
    return await tts(services).preferences(principal)


@router.put("/preferences", responses={422: documented_error("`validation_error`; `unknown_voice`")})
async def put_preferences(
    update: VoicePreferenceUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> VoicePreferenceRead:
    """Replace your voice and rate; `voice: null` (or left out) goes back to the default voice."""
    return await tts(services).set_preferences(principal, update)


@router.get(
    "/sample",
    response_class=Response,
    responses={
        200: {"content": {"audio/mpeg": {}}, "description": "a few seconds of the voice introducing itself (free)"},
        422: documented_error("`validation_error`; `unknown_voice`"),
    },
)
async def voice_sample(
    principal: CurrentPrincipal,
    services: ServicesDep,
    voice: str = Query(min_length=1, max_length=128, description="a voice id from /tts/voices"),
) -> Response:
    """Hear a voice before choosing it: its own engine speaks (503 when that engine cannot speak now)."""
    speech = await tts(services).sample(principal, voice)
    return Response(speech.data, media_type=speech.media_type,
                    headers={"X-TTS-Voice": speech.voice, "X-TTS-Engine": speech.engine,
                             "Cache-Control": "private, max-age=3600"})  # fmt: skip


@router.post(
    "/synthesize",
    response_class=Response,
    responses={
        200: {
            "content": {"audio/mpeg": {}, "audio/wav": {}},
            "description": "the audio; headers `X-TTS-Voice`, `X-TTS-Engine` (the one that spoke: an unavailable "
            "online voice falls back to an offline one of the same language) and `X-TTS-Duration`",
        },
        402: documented_error("`insufficient_credits`"),
        413: documented_error("`payload_too_large`: text past AGENT_UI_TTS__MAX_CHARS"),
        422: documented_error("`validation_error`; `unknown_voice`; `empty_text`"),
    },
)
async def synthesize(request: SynthesizeRequest, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    speech = await tts(services).synthesize(principal, request)
    return Response(
        speech.data,
        media_type=speech.media_type,
        headers={
            "X-TTS-Voice": speech.voice,
            "X-TTS-Engine": speech.engine,
            "X-TTS-Duration": f"{speech.duration_s:.3f}",
            "Content-Disposition": f'inline; filename="speech.{request.format}"',
        },
    )
