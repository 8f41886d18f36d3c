"""Runs of every kind (chat turns, jobs): read, follow from Last-Event-ID, stop. Each call is checked against
the scope of the run's kind, so a key that may not chat cannot read a chat turn here either."""

from __future__ import annotations

from fastapi import status
from sse_starlette import EventSourceResponse

from agent_ui.deps import CurrentPrincipal, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from agent_ui.sse import SSE_RESPONSE, ResumeFrom, event_stream
from services.runs import RunRead

router = api_router(
    prefix="/runs",
    tags=["runs"],
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}, 404: {"model": ErrorEnvelope}},
)


@router.get("/{run_id}")
async def get_run(run_id: str, principal: CurrentPrincipal, services: ServicesDep) -> RunRead:
    """Kind, status, progress (stage, done, total, message; `fraction` 0..1 when countable), result and error."""
    return RunRead.of(await services.runs.get(principal, run_id))


@router.get("/{run_id}/events", response_class=EventSourceResponse, responses={200: SSE_RESPONSE})
async def run_events(
    run_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    after: ResumeFrom,
) -> EventSourceResponse:
    """Replay the run's events after `Last-Event-ID` (or `?after=`), then follow it live until it ends."""
    return event_stream(await services.runs.follow(principal, run_id, after))


@router.post("/{run_id}/stop", status_code=status.HTTP_202_ACCEPTED, responses={409: {"model": ErrorEnvelope}})
async def stop_run(run_id: str, principal: CurrentPrincipal, services: ServicesDep) -> RunRead:
    """Stop a running run: a chat turn keeps its partial answer, a job is cancelled. 409 once it has ended."""
    return RunRead.of(await services.runs.request_stop(principal, run_id))
