"""Podcasts: start one (a generation job), read its transcript and chapters, re-speak one edited line."""

from __future__ import annotations

from typing import Any

from fastapi import Path, status

from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from services.auth import Scope
from services.container import Services
from services.jobs import JobRead
from services.tts import PodcastService
from services.tts.schemas import LineEdit, PodcastRead, PodcastRequest

router = api_router(
    prefix="/generation",
    tags=["generation"],
    guard=RequireScope(Scope.GENERATION),
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        503: documented_error("TTS is disabled (`tts_disabled`), no engine can speak now (`tts_unavailable`), or "
                              "resources were given and RAG is off (`rag_disabled`)"),
    },
)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: documented_error("`not_found`")}


def podcasts(services: Services) -> PodcastService:
    return services.get(PodcastService, "TTS is disabled on this instance", code="tts_disabled")


@router.post(
    "/podcast",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: documented_error("`not_found`: a resource in `rag_resource_ids` is not yours"),
        409: documented_error("`resource_not_ready`: a resource is still being read, or failed"),
        422: documented_error("`validation_error`; `unknown_voice`; `unknown_model`; `unknown_language`"),
        429: documented_error("`quota_exceeded`: too many jobs waiting"),
    },
)
async def create_podcast(body: PodcastRequest, principal: CurrentPrincipal, services: ServicesDep) -> JobRead:
    """Start a podcast job: the model writes the script (grounded in your resources, cited), each line is spoken with
    its speaker's voice, and the lines become one MP3. Follow it at `/generation/jobs/{id}/events`; when it is done,
    `GET /generation/podcasts/{id}` has the transcript and the audio."""
    return await podcasts(services).submit(principal, body)


@router.get("/podcasts/{podcast_id}", responses=NOT_FOUND)
async def get_podcast(podcast_id: str, principal: CurrentPrincipal, services: ServicesDep) -> PodcastRead:
    """The transcript (speaker, voice, text, start and end, citations per line), chapters, sources and the audio
    artifacts of a finished podcast job (404 while it is still being made)."""
    return await podcasts(services).get(principal, podcast_id)


@router.patch(
    "/podcasts/{podcast_id}/lines/{index}",
    responses={
        **NOT_FOUND,
        402: documented_error("`insufficient_credits`"),
        409: documented_error("`edit_conflict`: another edit of this podcast finished first"),
        422: documented_error("`validation_error`; `unknown_voice`; `empty_text`"),
    },
)
async def edit_line(
    podcast_id: str,
    body: LineEdit,
    principal: CurrentPrincipal,
    services: ServicesDep,
    index: int = Path(ge=0, le=10_000, description="the line's position, from 0"),
) -> PodcastRead:
    """Re-speak one line with new text (or another voice): the audio after it and every later line's times move,
    the MP3 keeps its artifact id with a new `version`."""
    return await podcasts(services).edit_line(principal, podcast_id, index, body)


@router.get("/artifacts/{artifact_id}/transcript", responses=NOT_FOUND)
async def podcast_transcript(artifact_id: str, principal: CurrentPrincipal, services: ServicesDep) -> PodcastRead:
    """The podcast whose audio is this artifact (its transcript and chapters)."""
    return await podcasts(services).of_artifact(principal, artifact_id)
