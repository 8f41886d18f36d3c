"""Prose: write an article, a summary, an email or a story, streamed as it is written and saved as markdown."""

from __future__ import annotations

from fastapi import Query
from sse_starlette import EventSourceResponse

from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from agent_ui.sse import SSE_RESPONSE, event_stream
from services.auth import Scope
from services.container import Services
from services.generation import ProseService
from services.generation.schemas import ProseRequest
from services.runs import RunRead

router = api_router(
    prefix="/generation",
    tags=["generation"],
    guard=RequireScope(Scope.GENERATION),
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        503: documented_error("`generation_disabled`; `rag_disabled` when resources are given"),
    },
)


def prose(services: Services) -> ProseService:
    return services.get(ProseService, "prose is disabled on this instance", code="generation_disabled")


@router.post(
    "/prose",
    response_class=EventSourceResponse,
    responses={
        200: SSE_RESPONSE,
        402: documented_error("`insufficient_credits`"),
        404: documented_error("`not_found`: a resource is not yours"),
        409: documented_error("`resource_not_ready`"),
        422: documented_error("`validation_error`; `unknown_model`"),
    },
)
async def write_prose(body: ProseRequest, principal: CurrentPrincipal, services: ServicesDep) -> EventSourceResponse:
    """Write and stream: `run` (its id), `citation` per source given, `content.delta` as the text comes, `artifact`
    (the saved markdown), `usage`, `done`. The run goes on if the client disconnects: resume it at
    `GET /runs/{run_id}/events` with `Last-Event-ID`; stop it with `POST /runs/{run_id}/stop` (what was written is
    saved)."""
    service = prose(services)
    run_id = await service.start(principal, body)
    return event_stream(await services.runs.follow(principal, run_id))


@router.get("/prose")
async def recent_prose(principal: CurrentPrincipal, services: ServicesDep,
                       limit: int = Query(default=20, ge=1, le=100)) -> list[RunRead]:  # fmt: skip
    """Your latest texts (their runs: status, and the saved artifact's id in `result`)."""
    return [RunRead.of(run) for run in await prose(services).recent(principal, limit)]
