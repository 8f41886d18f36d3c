"""Streaming chat (SSE), stop and resume of runs, and the user's chat sessions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Response, status
from sse_starlette import EventSourceResponse

from agent_ui.deps import CurrentPrincipal, PageDep, RequireScope, ServicesDep, api_router
from agent_ui.errors import ErrorEnvelope
from agent_ui.sse import SSE_RESPONSE, ResumeFrom, event_stream
from services.auth import Scope
from services.chat import ChatService
from services.chat.schemas import ChatStreamRequest, RunRead, SessionDetail, SessionRead, SessionUpdate
from services.db import Page

router = api_router(
    prefix="/chat",
    tags=["chat"],
    guard=RequireScope(Scope.CHAT),
    responses={401: {"model": ErrorEnvelope}, 403: {"model": ErrorEnvelope}},
)


def chat_service(services: ServicesDep) -> ChatService:
    return services.get(ChatService)


ChatDep = Annotated[ChatService, Depends(chat_service)]
NOT_FOUND = {404: {"model": ErrorEnvelope}}
SSE = SSE_RESPONSE


# What a turn can be refused with before its stream starts (afterwards, failures are `error` events).
STREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    402: {"model": ErrorEnvelope, "description": "the balance cannot pay for the first model call's prompt and a "
                                                 "minimal answer (`insufficient_credits`); nothing is stored"},
    404: {"model": ErrorEnvelope, "description": "unknown session or parent message, or another user's"},
    409: {"model": ErrorEnvelope, "description": "the session is already answering (`run_active`)"},
    422: {"model": ErrorEnvelope, "description": "validation failed: `validation_error`, `malformed_json`, "
                                                 "`unknown_model`, `no_model`, `unknown_tool_group`, "
                                                 "`message_too_long`, `message_empty`"},
    503: {"model": ErrorEnvelope, "description": "this server does not run chat"},
}  # fmt: skip


@router.post("/stream", response_class=EventSourceResponse, responses={200: SSE, **STREAM_ERRORS})
async def chat_stream(body: ChatStreamRequest, principal: CurrentPrincipal, chat: ChatDep) -> EventSourceResponse:
    """Send a message and stream the answer. The run goes on if the client disconnects; resume it from
    `/chat/runs/{run_id}/events`."""
    started = await chat.start_turn(principal, body)
    return event_stream(await chat.follow(principal, started.run_id))


@router.post(
    "/runs/{run_id}/stop", status_code=status.HTTP_202_ACCEPTED, responses={**NOT_FOUND, 409: {"model": ErrorEnvelope}}
)
async def stop_run(run_id: str, principal: CurrentPrincipal, chat: ChatDep) -> RunRead:
    """Stop a running turn: the partial answer is kept and the stream ends with `done` (`cancelled`)."""
    return await chat.stop(principal, run_id)


@router.get("/runs/{run_id}", responses=NOT_FOUND)
async def get_run(run_id: str, principal: CurrentPrincipal, chat: ChatDep) -> RunRead:
    return await chat.get_run(principal, run_id)


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse, responses={200: SSE, **NOT_FOUND})
async def run_events(
    run_id: str,
    principal: CurrentPrincipal,
    chat: ChatDep,
    after: ResumeFrom,
) -> EventSourceResponse:
    """Replay a turn's events after `Last-Event-ID` (or `?after=`), then follow it live until it ends."""
    return event_stream(await chat.follow(principal, run_id, after))


@router.get("/sessions")
async def list_sessions(
    principal: CurrentPrincipal,
    chat: ChatDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200, description="words to find in titles and message texts")] = None,
) -> Page[SessionRead]:
    return await chat.list_sessions(principal.user.id, limit=page.limit, cursor=page.cursor, query=q)


@router.get("/sessions/{session_id}", responses=NOT_FOUND)
async def get_session(session_id: str, principal: CurrentPrincipal, chat: ChatDep) -> SessionDetail:
    """The session with all its messages (every branch; follow `parent_id`)."""
    return await chat.get_session(principal.user.id, session_id)


@router.patch("/sessions/{session_id}", responses=NOT_FOUND)
async def update_session(
    session_id: str, body: SessionUpdate, principal: CurrentPrincipal, chat: ChatDep
) -> SessionRead:
    """Rename, or change the model or system prompt for the next turns."""
    return await chat.update_session(principal.user.id, session_id, body)


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_session(session_id: str, principal: CurrentPrincipal, chat: ChatDep) -> Response:
    """Delete the session and its messages; its usage metrics stay."""
    await chat.delete_session(principal.user.id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
