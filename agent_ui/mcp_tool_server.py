"""Our MCP tool server in the app: the SDK's streamable-HTTP app under /api/v1/agent/mcp/tool-server, behind
an ``sk_`` key check. Only ``Authorization: Bearer sk_...`` is taken (no session cookie: MCP clients are
programs, and a cookie would make it reachable from another site's page); no, a wrong or a revoked key is a
401 with ``WWW-Authenticate``, a key without the ``mcp`` scope a 403.

Sandboxes have no network, so the same app also listens on a unix socket that every sandbox sees read-only
(``services/mcp/provisioning.py``); there only keys bound to a sandbox are taken."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_ui.deps import credential_of
from agent_ui.errors import API_PREFIX, error_response
from services.auth.scopes import Scope as KeyScope
from services.auth.scopes import grants
from services.container import Services
from services.errors import AuthenticationError
from services.mcp import PRINCIPAL_SCOPE_KEY, ToolServer
from services.mcp.provisioning import McpProvisioner

PATH = f"{API_PREFIX}/v1/agent/mcp/tool-server"
log = logging.getLogger(__name__)


class KeyCheck:
    """Authenticate every HTTP request before the MCP app sees it, and hand it the principal."""

    def __init__(self, app: ASGIApp, services: Services, *, sandbox_keys_only: bool = False) -> None:
        self._app = app
        self._services = services
        self._sandbox_keys_only = sandbox_keys_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        token = credential_of(connection)
        authorization = connection.headers.get("authorization", "")
        try:
            if token is None or not authorization.lower().startswith("bearer "):
                raise AuthenticationError("send Authorization: Bearer sk_... (an API key with the mcp scope)")
            principal = await self._services.auth.authenticate(token)
            if self._sandbox_keys_only and principal.sandbox_id is None:
                raise AuthenticationError("this socket takes the keys of sandboxes only")
        except AuthenticationError as exc:
            refusal = error_response(401, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})
            await refusal(scope, receive, send)
            return
        if not grants(principal.scopes, KeyScope.MCP):
            await error_response(403, "insufficient_scope", "this API key lacks the 'mcp' scope")(scope, receive, send)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self._app(scope, receive, send)


def mount_tool_server(app: FastAPI, services: Services) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Mount the tool server (before the API's JSON fallback); returns what must run in the app's lifespan: the
    SDK's session manager (a mounted app's own lifespan never runs) and the sandboxes' socket."""
    tool_server = services.find(ToolServer)
    if tool_server is None:
        return _nothing
    # Callers are authenticated by key, never by cookie, so the SDK's DNS-rebinding guard (which refuses any
    # Host but localhost) would only refuse legitimate deployments.
    inner = tool_server.server.streamable_http_app(
        streamable_http_path="/", transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    app.router.routes.append(Mount(PATH, app=KeyCheck(inner, services)))
    provisioner = services.find(McpProvisioner)
    socket_app = Starlette(routes=[Mount(PATH, app=KeyCheck(inner, services, sandbox_keys_only=True))])

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        async with _in_own_task(tool_server.server.session_manager.run()):
            if provisioner is None:
                yield
                return
            async with _serving_socket(socket_app, provisioner.socket_path):
                yield

    return running


@asynccontextmanager
async def _in_own_task(context: AbstractAsyncContextManager[object]) -> AsyncIterator[None]:
    """Enter ``context`` in a task of its own: whoever enters this may leave it from another task (an in-process
    test's fixture does), which anyio's cancel scopes do not allow."""
    ready, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with context:
            ready.set()
            await done.wait()

    task = asyncio.create_task(hold(), name="mcp tool server sessions")
    waiting = asyncio.ensure_future(ready.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()  # it failed to start: raise why
    try:
        yield
    finally:
        done.set()
        await task


class _SocketServer(uvicorn.Server):
    """A second server inside the app's process: the app's lifespan stops it, so it leaves signals alone."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


@asynccontextmanager
async def _serving_socket(app: ASGIApp, path: Path) -> AsyncIterator[None]:
    """Serve ``app`` on a unix socket anyone may connect to (the sandbox user is another uid; keys decide)."""
    await asyncio.to_thread(path.unlink, missing_ok=True)  # left by a process that died
    # No logging config or access-log switch of its own: either would change the app server's loggers (uvicorn
    # configures them globally).
    server = _SocketServer(uvicorn.Config(app, uds=str(path), lifespan="off", log_config=None))
    task = asyncio.create_task(server.serve(), name="mcp tool server socket")
    try:
        async with asyncio.timeout(10):
            while not server.started and not task.done():  # noqa: ASYNC110  (uvicorn sets a flag, no event)
                await asyncio.sleep(0.01)
        if task.done():
            task.result()
        await asyncio.to_thread(path.chmod, 0o666)
    except BaseException:
        server.should_exit = True
        raise
    try:
        yield
    finally:
        server.should_exit = True
        await task
        await asyncio.to_thread(path.unlink, missing_ok=True)


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
