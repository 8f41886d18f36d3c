"""Generation jobs: list, read, follow, cancel and delete (a job id is its run id)."""

from __future__ import annotations

from fastapi import Response, status
from sse_starlette import EventSourceResponse

from agent_ui.deps import CurrentPrincipal, PageDep, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from agent_ui.sse import SSE_RESPONSE, ResumeFrom, event_stream
from services.auth import Scope
from services.db import Page
from services.jobs import JobRead

FAMILY = "generation"
router = api_router(
    prefix="/generation/jobs",
    tags=["generation"],
    guard=RequireScope(Scope.GENERATION),
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}},
)
NOT_FOUND = {404: {"model": ErrorEnvelope}}


@router.get("")
async def list_jobs(principal: CurrentPrincipal, services: ServicesDep, page: PageDep) -> Page[JobRead]:
    """Your generation jobs, newest first."""
    return await services.jobs.list_jobs(principal, family=FAMILY, limit=page.limit, cursor=page.cursor)


@router.get("/{job_id}", responses=NOT_FOUND)
async def get_job(job_id: str, principal: CurrentPrincipal, services: ServicesDep) -> JobRead:
    """Status (`queued`, `running`, `done`, `failed`, `cancelled`, `interrupted`), progress, result, artifacts."""
    return await services.jobs.get(principal, job_id, family=FAMILY)


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses={200: SSE_RESPONSE, **NOT_FOUND})
async def job_events(
    job_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    after: ResumeFrom,
) -> EventSourceResponse:
    """The job's `progress`, `artifact`, `usage` events and its `done` or `error`, from `Last-Event-ID` on."""
    return event_stream(await services.jobs.follow(principal, job_id, after, family=FAMILY))


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED,
             responses={**NOT_FOUND, 409: {"model": ErrorEnvelope}})  # fmt: skip
async def cancel_job(job_id: str, principal: CurrentPrincipal, services: ServicesDep) -> JobRead:
    """Cancel a waiting or running job; what it made so far is kept. 409 once it has ended."""
    return await services.jobs.cancel(principal, job_id, family=FAMILY)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_job(job_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    """Delete a job with its events and artifacts (a job still going is cancelled first)."""
    await services.jobs.delete(principal, job_id, family=FAMILY)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
