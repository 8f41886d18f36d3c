"""Sandboxes: create, inspect, run commands (JSON or SSE), move files, keep alive, destroy."""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Query, Request, Response, status
from fastapi.responses import JSONResponse

from agent_ui.deps import BODY_LIMIT_KEY, CurrentPrincipal, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope, documented_error
from agent_ui.sse import event_stream
from services.auth import Scope
from services.container import Services
from services.errors import DomainError, PayloadTooLargeError
from services.runs import RunEvent
from services.sandbox import SandboxService
from services.sandbox.base import ExecResult, OutputChunk
from services.sandbox.schemas import (
    MAX_PATH_BYTES,
    DirectoryListing,
    ExecRequest,
    ExecResponse,
    FileEntryRead,
    SandboxCreate,
    SandboxDetail,
    SandboxRead,
    WorkspacePath,
)

router = api_router(
    prefix="/sandboxes",
    tags=["sandboxes"],
    guard=RequireScope(Scope.SANDBOXES),
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        503: documented_error("sandboxes are disabled, the engine does not answer or failed (`sandbox_engine_error`)"),
    },
)
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: documented_error("no such sandbox of yours, or it is no longer running")}
NOT_RUNNING: Responses = {409: documented_error("`sandbox_not_running`: the sandbox is being destroyed")}
CREDITS: Responses = {402: documented_error("`insufficient_credits`: the balance cannot hold the sandbox's minutes")}


def sandboxes(services: Services) -> SandboxService:
    return services.get(SandboxService, "sandboxes are disabled on this instance", code="sandboxes_disabled")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **CREDITS,
        404: documented_error("`session_id` is not a chat session or run of yours"),
        429: documented_error("`sandbox_quota`: you have as many live sandboxes as allowed"),
    },
)
async def create_sandbox(body: SandboxCreate, principal: CurrentPrincipal, services: ServicesDep) -> SandboxRead:
    """Start a sandbox. `timeout_s` is its time to live; 429 past your quota of live sandboxes; `session_id`
    links it to one of your chat sessions or runs."""
    return await sandboxes(services).create(principal.user.id, body)


@router.get("")
async def list_sandboxes(
    principal: CurrentPrincipal,
    services: ServicesDep,
    all: Annotated[bool, Query()] = False,
) -> list[SandboxRead]:
    """Your live sandboxes (`?all=true` adds destroyed ones)."""
    return await sandboxes(services).list(principal.user.id, include_destroyed=all)


@router.get("/{sandbox_id}", responses=NOT_FOUND)
async def get_sandbox(sandbox_id: str, principal: CurrentPrincipal, services: ServicesDep) -> SandboxDetail:
    return await sandboxes(services).get(principal.user.id, sandbox_id)


@router.delete("/{sandbox_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def destroy_sandbox(sandbox_id: str, principal: CurrentPrincipal, services: ServicesDep) -> Response:
    await sandboxes(services).destroy(principal.user.id, sandbox_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{sandbox_id}/keepalive", responses={**NOT_FOUND, **CREDITS})
async def keepalive(sandbox_id: str, principal: CurrentPrincipal, services: ServicesDep) -> SandboxRead:
    """Reset the time to live."""
    return await sandboxes(services).keepalive(principal.user.id, sandbox_id)


@router.post(
    "/{sandbox_id}/exec",
    response_model=ExecResponse,
    responses={
        **NOT_FOUND,
        **NOT_RUNNING,
        200: {"content": {"text/event-stream": {}}},
        429: documented_error("`disk_quota`: the workspace passed its quota; the sandbox was destroyed"),
    },
)
async def exec_command(
    sandbox_id: str, body: ExecRequest, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Run `sh -c command` in /workspace (or `workdir`). With `stream`, SSE `output` events then `done`."""
    service = sandboxes(services)
    if body.stream:
        return event_stream(_exec_events(await service.exec_stream(principal.user.id, sandbox_id, body)))
    result = await service.exec(principal.user.id, sandbox_id, body)
    return JSONResponse(ExecResponse(**result.__dict__).model_dump(mode="json"))


async def _exec_events(items: AsyncIterator[OutputChunk | ExecResult]) -> AsyncIterator[list[RunEvent]]:
    """`output` events, then `done`; a failure once the stream has started ends it with `error` (`disk_quota`)."""
    counter = 0
    try:
        async for item in items:
            counter += 1
            if isinstance(item, OutputChunk):
                yield [RunEvent(counter, "output", {"stream": item.stream, "text": item.text})]
            else:
                yield [RunEvent(counter, "done", {"finish_reason": "exit", "elapsed_ms": item.elapsed_ms,
                                                  "exit_code": item.exit_code, "timed_out": item.timed_out,
                                                  "truncated": item.truncated})]  # fmt: skip
    except DomainError as exc:
        yield [RunEvent(counter + 1, "error", {"code": exc.code, "message": exc.message})]


@router.get(
    "/{sandbox_id}/files",
    responses={
        **NOT_FOUND,
        **NOT_RUNNING,
        200: {"model": DirectoryListing, "content": {"application/octet-stream": {}}},
    },
)
async def read_file(
    sandbox_id: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    path: Annotated[WorkspacePath, Query(max_length=MAX_PATH_BYTES)] = "",
) -> Response:
    """A file's bytes, or a directory's listing as JSON. Paths are relative to /workspace."""
    found = await sandboxes(services).read(principal.user.id, sandbox_id, path)
    if isinstance(found, bytes):
        name = quote(posixpath.basename(path.rstrip("/")) or "file")
        return Response(found, media_type="application/octet-stream",
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"})  # fmt: skip
    listing = DirectoryListing(path=path or ".", entries=[FileEntryRead(**entry.__dict__) for entry in found])
    return JSONResponse(listing.model_dump(mode="json"))


@router.put(
    "/{sandbox_id}/files",
    openapi_extra={BODY_LIMIT_KEY: "sandbox.max_upload_bytes"},
    responses={
        **NOT_FOUND,
        409: documented_error("`sandbox_not_running`, or `path_conflict`: a file or folder is in the way"),
        413: documented_error("`payload_too_large`: past the upload limit"),
        429: documented_error("`disk_quota`: the file would not fit in the workspace's quota"),
    },
)
async def write_file(
    sandbox_id: str,
    request: Request,
    principal: CurrentPrincipal,
    services: ServicesDep,
    path: Annotated[WorkspacePath, Query(min_length=1, max_length=MAX_PATH_BYTES)],
) -> FileEntryRead:
    """The raw request body becomes the file; parent folders are created."""
    limit = services.settings.sandbox.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"uploads are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"uploads are limited to {limit} bytes")
    entry = await sandboxes(services).write(principal.user.id, sandbox_id, path, bytes(body))
    return FileEntryRead(**entry.__dict__)
