"""Terminals in sandboxes: open, list, close over REST; input, output and resizing over a WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from fastapi import APIRouter, Response, WebSocket, status
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from agent_ui.api.v1.sandbox import NOT_FOUND, sandboxes
from agent_ui.deps import CurrentPrincipal, RequireScope, ServicesDep, api_router, get_services, resolve_principal
from agent_ui.errors import ErrorEnvelope, documented_error, error_response, status_for
from services.auth import Scope
from services.errors import AuthenticationError, DomainError, NotFoundError, PermissionDeniedError
from services.sandbox.schemas import TerminalCreate, TerminalRead, TerminalResize
from services.sandbox.terminals import Terminal, Viewer

log = logging.getLogger(__name__)
guard = RequireScope(Scope.SANDBOXES)
router = api_router(
    prefix="/sandboxes/{sandbox_id}/terminals",
    tags=["sandboxes"],
    guard=guard,
    responses={
        401: {"model": ErrorEnvelope},
        403: {"model": ErrorEnvelope},
        **NOT_FOUND,
        503: documented_error("sandboxes are disabled, the engine does not answer or failed (`sandbox_engine_error`)"),
    },
)
# WebSocket routes take no router guard (a guard reads a Request): the handler authenticates itself.
socket_router = APIRouter(prefix="/sandboxes/{sandbox_id}/terminals")
# Input frames larger than this close the socket (1009): a paste is sent in pieces by every terminal.
MAX_INPUT_FRAME = 64 * 1024
CLOSE_CODES = {AuthenticationError: 4401, PermissionDeniedError: 4403, NotFoundError: 4404}


QUOTA = {429: documented_error("`terminal_quota`: the sandbox has as many terminals open as allowed")}
TEXT_FRAMES = 'text frames are JSON: {"type": "resize", "rows": R, "cols": C} or {"type": "input", "data": "..."}'


@router.post("", status_code=status.HTTP_201_CREATED, responses=QUOTA)
async def open_terminal(
    sandbox_id: str, body: TerminalCreate, principal: CurrentPrincipal, services: ServicesDep
) -> TerminalRead:
    """Start `shell` (with `args`) on a new pseudo-terminal of `rows` by `cols`; attach to it with the WebSocket
    at `/api/v1/agent/sandboxes/{sandbox_id}/terminals/{terminal_id}`."""
    return (await sandboxes(services).open_terminal(principal.user.id, sandbox_id, body)).read()


@router.get("")
async def list_terminals(sandbox_id: str, principal: CurrentPrincipal, services: ServicesDep) -> list[TerminalRead]:
    """The sandbox's open terminals, oldest first."""
    return [terminal.read() for terminal in await sandboxes(services).list_terminals(principal.user.id, sandbox_id)]


@router.get("/{terminal_id}")
async def get_terminal(
    sandbox_id: str, terminal_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> TerminalRead:
    return (await sandboxes(services).terminal(principal.user.id, sandbox_id, terminal_id)).read()


@router.delete("/{terminal_id}", status_code=status.HTTP_204_NO_CONTENT)
async def close_terminal(
    sandbox_id: str, terminal_id: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Hang the terminal up: its program ends and attached sockets close with 1000."""
    await sandboxes(services).close_terminal(principal.user.id, sandbox_id, terminal_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@socket_router.websocket("/{terminal_id}")
async def terminal_socket(websocket: WebSocket, sandbox_id: str, terminal_id: str) -> None:
    """Binary frames in are typed input; binary frames out are the terminal's output (the scrollback first).
    Text frames in are JSON: `{"type": "resize", "rows": R, "cols": C}` or `{"type": "input", "data": "..."}`.
    When the terminal ends, a text frame `{"type": "exit", "code": N, "reason": "..."}` precedes close 1000. A
    handshake for another's or an unknown terminal, or without a credential, is refused (404, 401, 403)."""
    try:
        principal = await resolve_principal(websocket)
        guard.check(principal)
        terminal = await sandboxes(get_services(websocket)).terminal(principal.user.id, sandbox_id, terminal_id)
    except DomainError as exc:
        await _refuse(websocket, exc)
        return
    await websocket.accept()
    viewer = terminal.attach()
    sending = asyncio.create_task(_send_output(websocket, terminal, viewer))
    try:
        await _take_input(websocket, terminal)
    finally:
        terminal.detach(viewer)
        viewer.end()
        with contextlib.suppress(Exception):
            await sending


async def _refuse(websocket: WebSocket, error: DomainError) -> None:
    """The handshake is refused, never accepted: with the HTTP status and the JSON error a REST call would get
    where the server can send a response to a handshake, else with close code 4401/4403/4404/1011 (which the
    server turns into a 403 before any frame)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error_response(status_for(error), error.code, error.message))
        return
    await websocket.close(next((c for kind, c in CLOSE_CODES.items() if isinstance(error, kind)), 1011),
                          error.message[:120])  # fmt: skip


async def _send_output(websocket: WebSocket, terminal: Terminal, viewer: Viewer) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client went away first
        while data := await viewer.next():
            await websocket.send_bytes(data)
        if not terminal.running:
            reason = terminal.ended_reason or "ended"
            await websocket.send_text(json.dumps({"type": "exit", "code": terminal.exit_code, "reason": reason}))
            await _close(websocket, 1000, reason)


async def _take_input(websocket: WebSocket, terminal: Terminal) -> None:
    while True:
        try:
            message = await websocket.receive()
        except RuntimeError:  # closed by the sender side
            return
        if message["type"] == "websocket.disconnect":
            return
        data: bytes | None = message.get("bytes")
        if data is None and message.get("text") is not None:
            data = await _control(websocket, terminal, message["text"])
        if data is None:
            continue
        if len(data) > MAX_INPUT_FRAME:
            await _close(websocket, 1009, f"input frames are at most {MAX_INPUT_FRAME} bytes")
            return
        try:
            await terminal.write(data)
        except DomainError:  # ended meanwhile: the sender says how and closes
            return


async def _control(websocket: WebSocket, terminal: Terminal, text: str) -> bytes | None:
    """A resize (None back) or text input (its bytes); anything else is answered with an error frame."""
    try:
        message = json.loads(text)
        if isinstance(message, dict) and message.get("type") == "input" and isinstance(message.get("data"), str):
            return message["data"].encode()
        resize = TerminalResize.model_validate(message)
    except (ValueError, ValidationError):
        await websocket.send_text(json.dumps({"type": "error", "message": TEXT_FRAMES}))
        return None
    await terminal.resize(resize.rows, resize.cols)
    return None


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError):
            await websocket.close(code, reason[:120])
