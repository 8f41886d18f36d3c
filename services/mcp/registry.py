"""The MCP server registry: who may register what, where secrets live, and talking to a server through the pool.

A user sees their own servers and the ones an admin shared; only the owner changes or removes one. A stdio
server registered here runs on the host as the app's own user, so only admins may register one. A URL must not
lead to loopback or a private network (the database, Redis) unless the deployment allows it or an admin
registered it; it is checked when saved and again before every connection (a name can change what it resolves
to). ``env`` and ``headers`` are sealed by the vault and only ever shown redacted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.auth.authz import require_scope
from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.db.database import Database
from services.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    UpstreamUnavailableError,
    ValidationFailedError,
)
from services.ids import new_id
from services.mcp.client import CallResult, McpClientPool, McpError, McpTool, ProbeResult, ServerSpec
from services.mcp.models import McpServer
from services.mcp.schemas import (
    McpToolRead,
    ServerCreate,
    ServerError,
    ServerRead,
    ServerStatus,
    ServerTest,
    ServerUpdate,
    ToolCallResult,
    Transport,
)
from services.outbound import UrlFetcher
from services.provisioning import ProcessStream, Provisioners
from services.references import References
from services.settings import McpSettings
from services.vault import Vault, redact


class McpServerUnavailableError(UpstreamUnavailableError):
    """The server could not be reached, timed out or broke the protocol (503, the server and the cause named)."""

    code = "mcp_unavailable"

    def __init__(self, server: str, error: McpError) -> None:
        super().__init__(f"MCP server {server!r}: {error}", details={"kind": error.kind})


@dataclass(frozen=True)
class SandboxLauncher:
    """A user's stdio server in one of their sandboxes. Equal for equal settings, so the pool keeps its session."""

    user_id: str
    sandbox_id: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    opener: Callable[[str, str, list[str], dict[str, str]], Awaitable[ProcessStream]] = field(compare=False)

    async def open(self) -> ProcessStream:
        try:
            return await self.opener(self.user_id, self.sandbox_id, list(self.argv), dict(self.env))
        except NotFoundError as exc:
            raise McpError("refused", f"its sandbox {self.sandbox_id} is gone or not running") from exc
        except DomainError as exc:
            raise McpError("exited", f"it could not be started in sandbox {self.sandbox_id}: {exc.message}") from exc


class McpRegistry:
    def __init__(
        self,
        *,
        db: Database,
        vault: Vault,
        pool: McpClientPool,
        settings: McpSettings,
        references: References,
        sandboxes: Provisioners,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._references = references
        self._sandboxes = sandboxes
        self._vault = vault
        self._pool = pool
        self._settings = settings
        self._clock = clock

    # --- the registry ------------------------------------------------------------------------------------------

    async def create(self, principal: Principal, request: ServerCreate) -> ServerRead:
        """Register a server, then connect once so that its tools (or the reason it fails) show at once."""
        require_scope(principal, Scope.MCP)
        if request.transport == "stdio" and request.sandbox_id is None and not principal.is_admin:
            raise PermissionDeniedError(
                "a stdio server on the host runs as the app's own user, so only admins may register one; "
                "give sandbox_id to run it in one of your sandboxes",
                code="admin_required",
            )
        if request.sandbox_id is not None:
            await self._references.ensure_owned(principal.user.id, request.sandbox_id, what="sandbox")
        if request.shared and not principal.is_admin:
            raise PermissionDeniedError("only admins can share a server with every user", code="admin_required")
        if request.url is not None:
            await self._urls(principal).check(request.url)
        now = self._clock()
        server = McpServer(
            id=new_id("mcp"),
            user_id=principal.user.id,
            name=request.name,
            transport=request.transport,
            command=request.command,
            args=list(request.args or []),
            env=self._seal(request.env),
            url=request.url,
            sandbox_id=request.sandbox_id,
            headers=self._seal(request.headers),
            shared=request.shared,
            allow_private=principal.is_admin,
            enabled=request.enabled,
            created_at=now,
            updated_at=now,
        )
        async with self._db.transaction(exclusive=f"mcp:{principal.user.id}") as session:
            owned = await session.scalar(
                select(sa.func.count()).select_from(McpServer).where(McpServer.user_id == principal.user.id)
            )
            if (owned or 0) >= self._settings.max_servers_per_user:
                raise QuotaExceededError(
                    f"at most {self._settings.max_servers_per_user} MCP servers per user", code="mcp_server_quota"
                )
            await self._ensure_name_free(session, principal.user.id, request.name)
            session.add(server)
        if server.enabled:
            await self.test(principal, server.id)
        return await self.get(principal, server.id)

    async def visible(self, principal: Principal) -> list[ServerRead]:
        require_scope(principal, Scope.MCP)
        async with self._db.transaction(readonly=True) as session:
            rows = (await session.exec(self._visible(principal).order_by(col(McpServer.name)))).all()
        return [self._read(principal, row) for row in rows]

    async def get(self, principal: Principal, server_id: str) -> ServerRead:
        require_scope(principal, Scope.MCP)
        async with self._db.transaction(readonly=True) as session:
            return self._read(principal, await self._get_visible(session, principal, server_id))

    async def update(self, principal: Principal, server_id: str, request: ServerUpdate) -> ServerRead:
        require_scope(principal, Scope.MCP)
        if request.shared and not principal.is_admin:
            raise PermissionDeniedError("only admins can share a server with every user", code="admin_required")
        async with self._db.transaction(exclusive=f"mcp:{principal.user.id}") as session:
            server = await self._get_own(session, principal, server_id)
            if request.name is not None and request.name != server.name:
                await self._ensure_name_free(session, principal.user.id, request.name)
                server.name = request.name
            if server.transport == "stdio":
                if request.url is not None or request.headers is not None:
                    raise _invalid("a stdio server takes command, args and env, not url or headers")
                server.command = request.command or server.command
                if request.args is not None:
                    server.args = list(request.args)
                if request.env is not None:
                    server.env = self._seal(self._kept(server.env, request.env))
            else:
                if request.command is not None or request.args is not None or request.env is not None:
                    raise _invalid(f"a {server.transport} server takes url and headers, not command, args or env")
                if request.url is not None:
                    await self._urls(principal).check(request.url)
                    server.url, server.allow_private = request.url, principal.is_admin
                if request.headers is not None:
                    server.headers = self._seal(self._kept(server.headers, request.headers))
            if request.shared is not None:
                server.shared = request.shared
            if request.enabled is not None:
                server.enabled = request.enabled
            server.updated_at = self._clock()
            session.add(server)
        await self._pool.forget(server_id)
        return await self.get(principal, server_id)

    async def delete(self, principal: Principal, server_id: str) -> None:
        require_scope(principal, Scope.MCP)
        async with self._db.transaction() as session:
            server = await self._get_own(session, principal, server_id)
            await session.delete(server)
        await self._pool.forget(server_id)

    # --- talking to a server -----------------------------------------------------------------------------------

    async def test(self, principal: Principal, server_id: str) -> ServerTest:
        """Connect afresh, initialize and list the tools; what it found is kept as the server's status."""
        require_scope(principal, Scope.MCP)
        server = await self._server(principal, server_id)
        try:
            spec = await self._spec(server)
        except McpError as exc:
            probe = ProbeResult(ok=False, latency_ms=0.0, tools=[], server_name=None, server_version=None, error=exc)
        else:
            probe = await self._pool.probe(spec)
        await self._remember(server.id, probe)
        return ServerTest(
            ok=probe.ok,
            latency_ms=round(probe.latency_ms, 1) if probe.ok else None,
            server_name=probe.server_name,
            server_version=probe.server_version,
            tools=[_tool_read(tool) for tool in probe.tools],
            error=ServerError(kind=probe.error.kind, message=str(probe.error)) if probe.error else None,
        )

    async def tools(self, principal: Principal, server_id: str) -> list[McpToolRead]:
        require_scope(principal, Scope.MCP)
        return [_tool_read(tool) for tool in await self._listed(await self._server(principal, server_id))]

    async def call(
        self,
        principal: Principal,
        server_id: str,
        name: str,
        arguments: dict[str, Any],
        *,
        timeout_s: float | None = None,
    ) -> ToolCallResult:
        require_scope(principal, Scope.MCP)
        server = await self._server(principal, server_id)
        spec = await self._spec(server)
        if not any(tool.name == name for tool in await self._listed(server, spec)):
            raise NotFoundError(f"MCP server {server.name!r} has no tool {name!r}", code="mcp_tool_not_found")
        result = await self.call_server(server, name, arguments, timeout_s=timeout_s, spec=spec)
        return ToolCallResult(
            is_error=result.is_error, text=result.text(), content=result.content, structured=result.structured
        )

    async def call_server(
        self,
        server: McpServer,
        name: str,
        arguments: dict[str, Any],
        *,
        timeout_s: float | None = None,
        spec: ServerSpec | None = None,
    ) -> CallResult:
        """A tool call on a server the caller was found to see (the chat's tools come here too)."""
        spec = spec or await self._spec(server)
        try:
            return await self._pool.call_tool(server.id, spec, name, arguments, timeout_s=timeout_s)
        except McpError as exc:
            raise McpServerUnavailableError(server.name, exc) from exc

    async def _listed(self, server: McpServer, spec: ServerSpec | None = None) -> list[McpTool]:
        try:
            return await self._pool.list_tools(server.id, spec or await self._spec(server))
        except McpError as exc:
            raise McpServerUnavailableError(server.name, exc) from exc

    async def usable(self, principal: Principal) -> list[McpServer]:
        """The enabled servers the caller may use, with the tools their last connection listed."""
        async with self._db.transaction(readonly=True) as session:
            query = self._visible(principal).where(col(McpServer.enabled)).order_by(col(McpServer.name))
            return list((await session.exec(query)).all())

    async def stop(self) -> None:
        await self._pool.stop()

    # --- helpers -----------------------------------------------------------------------------------------------

    def _urls(self, principal: Principal) -> UrlFetcher:
        return UrlFetcher(allow_private=self._settings.allow_private_urls or principal.is_admin)

    def _visible(self, principal: Principal) -> Any:
        return select(McpServer).where(or_(McpServer.user_id == principal.user.id, col(McpServer.shared)))

    async def _get_visible(self, session: AsyncSession, principal: Principal, server_id: str) -> McpServer:
        server = await session.get(McpServer, server_id)
        if server is None or (server.user_id != principal.user.id and not server.shared):
            raise NotFoundError("no such MCP server")
        return server

    async def _get_own(self, session: AsyncSession, principal: Principal, server_id: str) -> McpServer:
        server = await self._get_visible(session, principal, server_id)
        if server.user_id != principal.user.id:
            raise PermissionDeniedError(
                "a shared server can only be changed by the admin who shared it", code="not_owner"
            )
        return server

    async def _server(self, principal: Principal, server_id: str) -> McpServer:
        async with self._db.transaction(readonly=True) as session:
            return await self._get_visible(session, principal, server_id)

    async def _ensure_name_free(self, session: AsyncSession, user_id: str, name: str) -> None:
        taken = await session.scalar(select(McpServer.id).where(McpServer.user_id == user_id, McpServer.name == name))
        if taken is not None:
            raise ConflictError(f"you already have an MCP server named {name!r}", code="mcp_server_exists")

    async def _spec(self, server: McpServer) -> ServerSpec:
        """How to reach the server now; its URL is checked again (a name may resolve elsewhere than when saved)."""
        if server.url is not None and not (self._settings.allow_private_urls or server.allow_private):
            try:
                await UrlFetcher(allow_private=False).check(server.url)
            except DomainError as exc:  # a refused address reads as a refused connection to the user
                raise McpError("refused", exc.message) from exc
        env = self._vault.open(server.env) if server.env else {}
        headers = self._vault.open(server.headers) if server.headers else {}
        if server.sandbox_id is not None:
            launcher = SandboxLauncher(server.user_id, server.sandbox_id, (server.command or "", *server.args),
                                       tuple(sorted(env.items())), self._sandboxes.open_process)  # fmt: skip
            return ServerSpec(transport="stdio", command=server.command, launcher=launcher)
        return ServerSpec(
            transport=cast(Transport, server.transport),
            command=server.command,
            args=tuple(server.args),
            env=env,
            url=server.url,
            headers=headers,
        )

    async def _remember(self, server_id: str, probe: ProbeResult) -> None:
        async with self._db.transaction() as session:
            server = await session.get(McpServer, server_id)
            if server is None:
                return
            server.last_checked_at = self._clock()
            server.last_status = "ok" if probe.ok else "error"
            server.last_error = None if probe.ok else str(probe.error)[:1000]
            server.last_latency_ms = round(probe.latency_ms, 1) if probe.ok else None
            if probe.ok:
                server.tools = [_tool_read(tool).model_dump() for tool in probe.tools]
            session.add(server)

    def _seal(self, values: dict[str, str] | None) -> dict[str, Any] | None:
        return self._vault.seal(values) if values else None

    def _kept(self, sealed: dict[str, Any] | None, given: dict[str, str]) -> dict[str, str]:
        """``given``, where a value sent back redacted keeps the stored one."""
        stored: dict[str, str] = self._vault.open(sealed) if sealed else {}
        return {
            name: stored[name] if name in stored and value == redact(stored[name]) else value
            for name, value in given.items()
        }

    def _read(self, principal: Principal, server: McpServer) -> ServerRead:
        env = self._vault.open(server.env) if server.env else {}
        headers = self._vault.open(server.headers) if server.headers else {}
        return ServerRead(
            id=server.id,
            name=server.name,
            transport=cast(Transport, server.transport),
            command=server.command,
            args=list(server.args),
            env={k: redact(v) for k, v in env.items()},
            url=server.url,
            sandbox_id=server.sandbox_id,
            headers={k: redact(v) for k, v in headers.items()},
            shared=server.shared,
            enabled=server.enabled,
            own=server.user_id == principal.user.id,
            status=cast(ServerStatus, server.last_status or "unknown"),
            last_checked_at=server.last_checked_at,
            last_error=server.last_error,
            last_latency_ms=server.last_latency_ms,
            tool_count=len(server.tools),
            created_at=server.created_at,
            updated_at=server.updated_at,
        )


def _tool_read(tool: McpTool) -> McpToolRead:
    return McpToolRead(name=tool.name, description=tool.description, input_schema=tool.input_schema)


def _invalid(message: str) -> ValidationFailedError:
    return ValidationFailedError(message, code="invalid_mcp_server")
