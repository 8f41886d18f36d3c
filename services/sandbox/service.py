"""The sandbox lifecycle: create within quotas and credits, exec, files inside /workspace, keepalive,
destroy, a reaper for expired sandboxes, and reconciliation with the engine at start."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import math
import posixpath
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.clock import Clock, utcnow
from services.credits import CreditService, Hold
from services.db.database import Database
from services.db.owned import get_owned
from services.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    QuotaExceededError,
    UpstreamUnavailableError,
    ValidationFailedError,
)
from services.ids import new_id
from services.instances import LiveInstances
from services.money import to_micro
from services.periodic import Periodic
from services.provisioning import NewSandbox, Provisioners
from services.references import References
from services.sandbox.base import (
    WORKSPACE,
    ExecResult,
    FileEntry,
    LabelledSandbox,
    Limits,
    OutputChunk,
    PtyProcess,
    PtySpec,
    SandboxBackend,
    SandboxSpec,
    result_of,
)
from services.sandbox.image import template_named
from services.sandbox.models import Sandbox
from services.sandbox.pool import WarmPool, WarmSandbox
from services.sandbox.schemas import (
    ExecRequest,
    SandboxCreate,
    SandboxDetail,
    SandboxRead,
    TerminalCreate,
    check_workspace_path,
)
from services.sandbox.terminals import Terminal, Terminals
from services.settings import CreditsSettings, SandboxSettings

log = logging.getLogger(__name__)
LIVE = ("starting", "running")


def workspace_path(path: str | None) -> str:
    """A path relative to /workspace, normalised; absolute paths and `..` that leave it are refused, and so are
    names no file system takes (NUL, longer than 255 bytes, 1024 bytes in all)."""
    raw = (path or "").strip()
    try:
        check_workspace_path(raw)
    except ValueError as exc:
        raise ValidationFailedError(str(exc), code="invalid_path") from exc
    if raw.startswith("/") or "\\" in raw:
        raise ValidationFailedError("paths are relative to /workspace", code="path_outside_workspace")
    joined = posixpath.normpath(posixpath.join(WORKSPACE, raw))
    if joined != WORKSPACE and not joined.startswith(WORKSPACE + "/"):
        raise ValidationFailedError("the path leaves /workspace", code="path_outside_workspace")
    return joined


PIPE_READY = "agent-ui-stdio-ready"
STDIO_LOG = "/tmp/.agent-ui-stdio.log"  # noqa: S108  (the sandbox's own /tmp)


class PtyPipe:
    """A terminal in raw mode read as a pipe: the wrapper's ready line consumed, a closed program a broken pipe."""

    def __init__(self, process: PtyProcess) -> None:
        self._process = process
        self._pending = b""

    async def wait_ready(self, timeout_s: float = 20.0) -> None:
        marker = PIPE_READY.encode() + b"\n"
        seen = b""
        async with asyncio.timeout(timeout_s):
            while marker not in seen:
                chunk = await self._process.read()
                if not chunk:
                    raise UpstreamUnavailableError("the program could not be started in the sandbox",
                                                   code="sandbox_engine_error")  # fmt: skip
                seen += chunk.replace(b"\r\n", b"\n")
        self._pending = seen.split(marker, 1)[1]

    async def read(self) -> bytes:
        if self._pending:
            pending, self._pending = self._pending, b""
            return pending
        return await self._process.read()

    async def write(self, data: bytes) -> None:
        try:
            await self._process.write(data)
        except ConflictError as exc:
            raise BrokenPipeError("the program has ended") from exc

    async def close(self) -> None:
        await self._process.close()

    def exit_message(self) -> str:
        code = self._process.exit_code
        ended = "it exited" if code is None else f"it exited with code {code}"
        return f"{ended}; its stderr is in {STDIO_LOG} in the sandbox"


class SandboxService:
    def __init__(
        self,
        *,
        db: Database,
        backends: list[SandboxBackend],
        credits: CreditService,
        references: References,
        settings: SandboxSettings,
        provisioners: Provisioners | None = None,
        prices: CreditsSettings,
        owner: str,
        clock: Clock = utcnow,
    ) -> None:
        """``owner`` is this instance's id: the sandboxes it starts are its own to reap, and others recover them
        only once its lease is gone. ``references`` tells whether a ``session_id`` (a chat session, a run) is the
        caller's."""
        self._db = db
        self._references = references
        self._provisioners = provisioners or Provisioners()
        self._owner = owner
        self._candidates = backends
        self.backend = backends[0]
        self.choice = "not checked yet"
        self._credits = credits
        self._settings = settings
        self._price_per_minute = to_micro(Decimal(str(prices.sandbox_price_per_minute)))
        self._clock = clock
        self._reaper = Periodic("sandbox-reaper", settings.reap_interval_s, self.reap)
        self.pool = WarmPool(self.backend, size=0, make_spec=self._pool_spec)
        self.terminals = Terminals(settings, clock)

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Choose the first backend that answers, say which and why, then keep a warm pool and reap in the
        background. Sandboxes of instances that are gone are recovered through :meth:`recover`."""
        reasons = []
        for backend in self._candidates:
            try:
                version = await backend.ping()
            except Exception as exc:  # try the next one; sandbox calls answer 503 when none is usable
                reasons.append(f"{backend.kind}: {getattr(exc, 'message', exc)}")
                continue
            self.backend = backend
            self.choice = version + (f"; not {'; '.join(reasons)}" if reasons else "")
            log.info("sandboxes: %s backend, %s", backend.kind, self.choice)
            self.pool = WarmPool(backend, size=getattr(self._settings.warm_pool, backend.kind, 0),
                                 make_spec=self._pool_spec)  # fmt: skip
            self.pool.start()
            break
        else:
            self.choice = "none usable: " + "; ".join(reasons)
            log.warning("sandboxes: %s", self.choice)
        self._reaper.start()
        self.terminals.start()

    def describe(self) -> str:
        """Which backend, why, and how warm: what health and /config tell users."""
        pool = self.pool
        warm = f"; warm pool {pool.ready}/{pool.size}" if pool.size else "; no warm pool"
        failing = f" (last start failed: {pool.last_error})" if pool.last_error else ""
        return f"{self.backend.kind} backend: {self.choice}{warm}{failing}"

    async def stop(self) -> None:
        await self._reaper.stop()
        await self.terminals.stop()
        await self.pool.stop()

    def _limits(self, cpu: float, memory_mb: int) -> Limits:
        settings = self._settings
        return Limits(cpu=cpu, memory_mb=memory_mb, pids=settings.pids, disk_mb=settings.disk_mb)

    def _pool_spec(self) -> SandboxSpec:
        """What a pooled sandbox is: the default limits, no network, no env, and no owner yet."""
        settings = self._settings
        return SandboxSpec(sandbox_id=new_id("sbx"), user_id="", image=settings.image,
                           limits=self._limits(settings.default_cpu, settings.default_memory_mb),
                           mounts=tuple(self._provisioners.mounts()))  # fmt: skip

    async def recover(self, live: LiveInstances) -> None:
        """Sandboxes of instances that are gone: their containers (warm pool leftovers too) are removed and their
        rows marked destroyed with the minutes settled. Sandboxes of live instances, ours included, stay, except
        our own strays (see :meth:`_remove_strays`)."""
        async with self._db.transaction(readonly=True) as session:
            rows = list((await session.exec(select(Sandbox).where(col(Sandbox.status).in_(LIVE)))).all())
        claimed = {row.id for row in rows if live.owns(row.owner_instance)}
        removed: set[str] = set()
        with contextlib.suppress(Exception):  # an engine that does not answer is tried again at the next heartbeat
            engine = await self.backend.list_labelled()
            for labelled in engine:
                if live.owns(labelled.owner) or (not labelled.owner and labelled.sandbox_id in claimed):
                    continue
                log.warning("removing sandbox %s of an instance that is gone", labelled.sandbox_id or labelled.ref)
                await self.backend.destroy(labelled.ref)
                removed.add(labelled.ref)
            await self._remove_strays([labelled for labelled in engine if labelled.ref not in removed])
        for sandbox in rows:
            if sandbox.id in claimed:
                continue
            if sandbox.ref and sandbox.ref not in removed:  # not on this engine's list: try it by its reference
                with contextlib.suppress(Exception):
                    await self.backend.destroy(sandbox.ref)
            await self._finish(sandbox, reason="server restart")

    async def _remove_strays(self, engine: builtins.list[LabelledSandbox]) -> None:
        """Sandboxes this instance started for a user whose row is no longer live (a create whose clean-up
        failed too, a destroy that did not reach the engine): removed, so that none outlives its row until the
        next start. The rows are read after the engine's listing, and a row is live before its sandbox is
        started, so a sandbox being created is never taken for a stray; pooled ones (no user yet) are left."""
        ours = {labelled.sandbox_id: labelled for labelled in engine if labelled.owner == self._owner
                and labelled.user_id}  # fmt: skip
        if not ours:
            return
        async with self._db.transaction(readonly=True) as session:
            statement = select(Sandbox.id).where(col(Sandbox.id).in_(list(ours)), col(Sandbox.status).in_(LIVE))
            live_ids = set((await session.exec(statement)).all())
        for sandbox_id, labelled in ours.items():
            if sandbox_id not in live_ids:
                log.warning("removing sandbox %s: its row is no longer live", sandbox_id)
                await self.backend.destroy(labelled.ref)

    async def reap(self) -> int:
        """Destroy this instance's sandboxes whose time to live has run out."""
        async with self._db.transaction(readonly=True) as session:
            statement = select(Sandbox).where(col(Sandbox.status).in_(LIVE), Sandbox.expires_at <= self._clock(),
                                              Sandbox.owner_instance == self._owner)  # fmt: skip
            expired = list((await session.exec(statement)).all())
        for sandbox in expired:
            await self._destroy(sandbox, reason="expired")
        return len(expired)

    # -- create, read, destroy -----------------------------------------------------------------------------

    async def create(self, user_id: str, request: SandboxCreate) -> SandboxRead:
        settings = self._settings
        if request.network and not settings.allow_network:
            raise ValidationFailedError("networking is not enabled for sandboxes on this instance",
                                        code="network_not_allowed")  # fmt: skip
        timeout_s = request.timeout_s or settings.default_timeout_s
        cpu = request.cpu or settings.default_cpu
        memory_mb = request.memory_mb or settings.default_memory_mb
        for name, value, most in [("timeout_s", timeout_s, settings.max_timeout_s), ("cpu", cpu, settings.max_cpu),
                                  ("memory_mb", memory_mb, settings.max_memory_mb)]:  # fmt: skip
            if value > most:
                raise ValidationFailedError(f"{name} is at most {most} here", code="limit_too_high")
        if request.session_id is not None:  # a link to a chat session or run: only to one of the caller's
            await self._references.ensure_owned(user_id, request.session_id, what="session")
        now = self._clock()
        sandbox = Sandbox(
            id=new_id("sbx"), user_id=user_id, backend=self.backend.kind, status="starting", template=request.template,
            cpu=cpu, memory_mb=memory_mb, pids=settings.pids, disk_mb=settings.disk_mb, network=request.network,
            session_id=request.session_id, timeout_s=timeout_s, created_at=now,
            expires_at=now + timedelta(seconds=timeout_s), owner_instance=self._owner,
        )  # fmt: skip
        spec = SandboxSpec(sandbox_id=sandbox.id, user_id=user_id, image=self._image(request.template),
                           limits=self._limits(cpu, memory_mb), network=request.network,
                           env=dict(request.env), mounts=tuple(self._provisioners.mounts()))  # fmt: skip
        warm: WarmSandbox | None = None
        try:
            # One transaction for the quota, the hand-out, the row and the minutes' hold: a warm create is done
            # when it commits, a cold one starts the backend after it.
            async with self._db.transaction(exclusive=f"sandbox-quota:{user_id}") as session:
                statement = select(Sandbox).where(Sandbox.user_id == user_id, col(Sandbox.status).in_(LIVE))
                live = (await session.exec(statement)).all()
                if len(live) >= settings.max_live_per_user:
                    raise QuotaExceededError(
                        f"you have {len(live)} live sandboxes, the most allowed; destroy one first",
                        code="sandbox_quota", details={"limit": settings.max_live_per_user},
                    )  # fmt: skip
                if self._pool_spec_fits(spec):
                    warm = self.pool.take()
                if warm is not None:
                    sandbox.id, sandbox.ref, sandbox.status = warm.spec.sandbox_id, warm.ref, "running"
                sandbox.hold_ids = await self._hold_minutes(session, user_id, sandbox.id, timeout_s)
                session.add(sandbox)
        except BaseException:
            if warm is not None:  # refused (quota, credits) or not recorded: it never reached the user
                self.pool.put_back(warm)
            raise
        if warm is not None:
            self.pool.handed_out()
            await self._provision(sandbox)
            return SandboxRead.model_validate(sandbox)
        ref: str | None = None
        try:
            # The backend leaves nothing behind when its create fails or is cancelled (see SandboxBackend.create).
            ref = await self.backend.create(spec)
            sandbox.ref, sandbox.status = ref, "running"
            await self._save(sandbox)
        except BaseException:
            await self._abandon(sandbox, ref)
            raise
        await self._provision(sandbox)
        return SandboxRead.model_validate(sandbox)

    async def _provision(self, sandbox: Sandbox) -> None:
        """What other capabilities put into a user's new sandbox (their CLI settings, a key of its own)."""
        user_id, sandbox_id = sandbox.user_id, sandbox.id

        async def write_file(path: str, data: bytes) -> None:
            await self.write(user_id, sandbox_id, path, data)

        await self._provisioners.created(NewSandbox(sandbox_id, user_id, sandbox.template, write_file))

    def _image(self, template: str) -> str:
        return self._settings.image if template == "python" else template_named(template).image

    async def _abandon(self, sandbox: Sandbox, ref: str | None) -> None:
        """A cold create that failed (the engine refused or failed, the caller went away, the row could not be
        saved): remove what was started, release the minutes' hold and mark the row failed, so that it neither
        counts toward the quota nor holds credits. Every step is tried; none hides the create's own error."""
        if ref is not None:
            await self._discard(ref)
        sandbox.ref, sandbox.status = None, "failed"
        sandbox.destroy_reason, sandbox.destroyed_at = "create failed", self._clock()
        try:
            async with self._db.transaction() as session:
                for hold in self._holds(sandbox):
                    await self._credits.release(hold, session=session)
                sandbox.hold_ids = []
                await session.merge(sandbox)
        except Exception:  # the create's error is the one to report; the hold lapses, the reaper ends the row
            log.exception("could not record the failed create of sandbox %s", sandbox.id)

    def _pool_spec_fits(self, spec: SandboxSpec) -> bool:
        """A pooled sandbox serves only a request that asks for exactly what it was started with."""
        settings = self._settings
        return (not spec.network and not spec.env and spec.image == settings.image
                and spec.limits == self._limits(settings.default_cpu, settings.default_memory_mb))  # fmt: skip

    async def _discard(self, ref: str) -> None:
        with contextlib.suppress(Exception):
            await self.backend.destroy(ref)

    async def _hold_minutes(self, session: AsyncSession, user_id: str, sandbox_id: str, seconds: int) -> list[str]:
        """Hold the minutes a sandbox may live, in the caller's transaction. The hold outlives the longest
        lifetime; it goes when the sandbox is destroyed (or its instance dies)."""
        hold = await self._credits.hold(user_id, at_most=self._price_per_minute * math.ceil(seconds / 60),
                                        cause_type="sandbox", cause_id=sandbox_id, session=session,
                                        ttl_s=self._settings.max_timeout_s + 3600)  # fmt: skip
        return [hold.id] if hold.id else []

    async def _save(self, sandbox: Sandbox) -> None:
        async with self._db.transaction() as session:
            await session.merge(sandbox)

    async def get(self, user_id: str, sandbox_id: str) -> SandboxDetail:
        sandbox = await self._owned(user_id, sandbox_id)
        used = None
        if sandbox.status == "running" and sandbox.ref:
            with contextlib.suppress(Exception):
                used = await self.backend.disk_usage(sandbox.ref)
        return SandboxDetail(**SandboxRead.model_validate(sandbox).model_dump(), disk_used_bytes=used)

    async def of_session(self, user_id: str, session_id: str) -> SandboxRead | None:
        """The newest live sandbox a chat session started, if any."""
        async with self._db.transaction(readonly=True) as session:
            statement = (
                select(Sandbox)
                .where(Sandbox.user_id == user_id, Sandbox.session_id == session_id, col(Sandbox.status).in_(LIVE))
                .order_by(col(Sandbox.created_at).desc())
            )
            row = (await session.exec(statement)).first()
        return SandboxRead.model_validate(row) if row is not None else None

    async def list(self, user_id: str, *, include_destroyed: bool = False) -> list[SandboxRead]:
        statement = select(Sandbox).where(Sandbox.user_id == user_id)
        if not include_destroyed:
            statement = statement.where(col(Sandbox.status).in_(LIVE))
        async with self._db.transaction(readonly=True) as session:
            rows = (await session.exec(statement.order_by(col(Sandbox.created_at).desc()))).all()
        return [SandboxRead.model_validate(row) for row in rows]

    async def keepalive(self, user_id: str, sandbox_id: str) -> SandboxRead:
        """Reset the time to live; the extra minutes are held like the first ones."""
        sandbox = await self._live(user_id, sandbox_id)
        now = self._clock()
        new_expiry = now + timedelta(seconds=sandbox.timeout_s)
        extra = max(0, int((new_expiry - sandbox.expires_at).total_seconds()))
        async with self._db.transaction() as session:
            if extra:
                sandbox.hold_ids = [*sandbox.hold_ids, *await self._hold_minutes(session, user_id, sandbox.id, extra)]
            sandbox.expires_at = new_expiry
            await session.merge(sandbox)
        return SandboxRead.model_validate(sandbox)

    async def destroy(self, user_id: str, sandbox_id: str) -> None:
        sandbox = await self._owned(user_id, sandbox_id)
        if sandbox.status in LIVE:
            await self._destroy(sandbox, reason="destroyed by user")

    async def _destroy(self, sandbox: Sandbox, *, reason: str) -> None:
        await self.terminals.close_sandbox(sandbox.id, f"the sandbox was destroyed ({reason})")
        if sandbox.ref:
            await self.backend.destroy(sandbox.ref)
        await self._finish(sandbox, reason=reason)

    async def _finish(self, sandbox: Sandbox, *, reason: str) -> None:
        """Mark destroyed and charge the minutes it lived (at least one), releasing its holds."""
        now = self._clock()
        minutes = max(1, math.ceil((min(now, sandbox.expires_at) - sandbox.created_at).total_seconds() / 60))
        cost = self._price_per_minute * minutes
        async with self._db.transaction() as session:
            for index, hold in enumerate(self._holds(sandbox)):
                await self._credits.settle(hold, cost if index == 0 else 0, session=session)
            sandbox.status, sandbox.destroyed_at, sandbox.destroy_reason, sandbox.hold_ids = (
                "destroyed",
                now,
                reason,
                [],
            )
            await session.merge(sandbox)
        await self._provisioners.destroyed(sandbox.user_id, sandbox.id)

    def _holds(self, sandbox: Sandbox) -> builtins.list[Hold]:
        """The holds paying for a sandbox's minutes (one with nothing held when it is free)."""
        ids: builtins.list[str | None] = [*sandbox.hold_ids] or [None]
        return [Hold(hold_id, sandbox.user_id, 0, "sandbox", sandbox.id) for hold_id in ids]

    async def _owned(self, user_id: str, sandbox_id: str) -> Sandbox:
        async with self._db.transaction(readonly=True) as session:
            return await get_owned(session, Sandbox, sandbox_id, user_id, missing="sandbox not found")

    async def _live(self, user_id: str, sandbox_id: str) -> Sandbox:
        sandbox = await self._owned(user_id, sandbox_id)
        if sandbox.status not in LIVE or sandbox.ref is None:
            raise NotFoundError("sandbox not found or no longer running")
        return sandbox

    # -- terminals -----------------------------------------------------------------------------------------

    async def open_terminal(self, user_id: str, sandbox_id: str, request: TerminalCreate) -> Terminal:
        """A program (a shell by default) on a new pseudo-terminal in the sandbox; 429 past the setting's count."""
        sandbox = await self._live(user_id, sandbox_id)
        assert sandbox.ref is not None
        self.terminals.check_room(sandbox.id)
        spec = PtySpec(argv=[request.shell, *request.args], rows=request.rows, cols=request.cols,
                       workdir=workspace_path(request.workdir), env=dict(request.env))  # fmt: skip
        process = await self.backend.open_pty(sandbox.ref, spec)
        try:
            self.terminals.check_room(sandbox.id)  # another open may have taken the last place meanwhile
        except QuotaExceededError:
            await process.close()
            raise
        return self.terminals.add(sandbox_id=sandbox.id, user_id=user_id, shell=request.shell, args=request.args,
                                  rows=request.rows, cols=request.cols, process=process)  # fmt: skip

    async def open_process(self, user_id: str, sandbox_id: str, argv: builtins.list[str],
                           env: dict[str, str]) -> PtyPipe:  # fmt: skip
        """A program whose stdin and stdout are a byte stream (a user's stdio MCP server): on a terminal put in
        raw mode (no echo, no line editing, bytes as they are), its stderr kept in the sandbox's
        ``/tmp/.agent-ui-stdio.log``. Not one of the user's terminals: it counts toward no quota."""
        sandbox = await self._live(user_id, sandbox_id)
        assert sandbox.ref is not None
        wrapper = ["sh", "-c", f'stty raw -echo; echo "$0"; exec "$@" 2>>{STDIO_LOG}', PIPE_READY, *argv]
        process = await self.backend.open_pty(sandbox.ref, PtySpec(argv=wrapper, rows=24, cols=200, env=env))
        pipe = PtyPipe(process)
        try:
            await pipe.wait_ready()
        except BaseException:
            await process.close()
            raise
        return pipe

    async def list_terminals(self, user_id: str, sandbox_id: str) -> builtins.list[Terminal]:
        """The sandbox's open terminals, oldest first."""
        sandbox = await self._live(user_id, sandbox_id)
        return self.terminals.of_sandbox(sandbox.id)

    async def terminal(self, user_id: str, sandbox_id: str, terminal_id: str) -> Terminal:
        """One of the caller's open terminals (404 for another's, as for their sandboxes)."""
        sandbox = await self._live(user_id, sandbox_id)
        return self.terminals.get(sandbox.id, terminal_id)

    async def close_terminal(self, user_id: str, sandbox_id: str, terminal_id: str) -> None:
        await (await self.terminal(user_id, sandbox_id, terminal_id)).close("closed")

    # -- exec and files -------------------------------------------------------------------------------

    def _exec_args(self, request: ExecRequest) -> dict[str, object]:
        timeout = min(request.timeout_s or self._settings.exec_timeout_s, self._settings.max_exec_timeout_s)
        return {"timeout_s": timeout, "workdir": workspace_path(request.workdir), "env": dict(request.env),
                "max_output": self._settings.max_output_bytes}  # fmt: skip

    async def exec(self, user_id: str, sandbox_id: str, request: ExecRequest) -> ExecResult:
        return await result_of(await self.exec_stream(user_id, sandbox_id, request))

    async def exec_stream(
        self, user_id: str, sandbox_id: str, request: ExecRequest
    ) -> AsyncIterator[OutputChunk | ExecResult]:
        """The command's output as it comes and its result last, with the workspace watched all along."""
        sandbox = await self._live(user_id, sandbox_id)
        assert sandbox.ref is not None
        stream = self.backend.exec_stream(sandbox.ref, request.command, **self._exec_args(request))  # type: ignore[arg-type]
        return self._within_disk_quota(sandbox, stream)

    async def _within_disk_quota(
        self, sandbox: Sandbox, stream: AsyncIterator[OutputChunk | ExecResult]
    ) -> AsyncIterator[OutputChunk | ExecResult]:
        """Pass the stream through, checking the workspace every second and at the end: past the quota the
        command is stopped and the sandbox destroyed (429), so no command can fill the disk under it."""
        assert sandbox.ref is not None
        ref, quota = sandbox.ref, sandbox.disk_mb * 2**20

        async def over_quota() -> bool:
            try:
                return await self.backend.disk_usage(ref) > quota
            except Exception:  # a failed probe is not a verdict; the next one decides
                return False

        async def watch() -> None:
            while True:
                await asyncio.sleep(1.0)
                if await over_quota():
                    return

        async def stop(task: asyncio.Future[Any] | None) -> None:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

        watcher = asyncio.ensure_future(watch())
        upcoming: asyncio.Future[OutputChunk | ExecResult] | None = None
        try:
            while True:
                upcoming = asyncio.ensure_future(anext(stream))
                await asyncio.wait({upcoming, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if watcher.done():
                    await stop(upcoming)
                    await self._disk_quota_exceeded(sandbox)
                try:
                    item = upcoming.result()
                except StopAsyncIteration:
                    return
                if isinstance(item, ExecResult) and (
                    item.disk_used_bytes > quota if item.disk_used_bytes is not None else await over_quota()
                ):
                    await self._disk_quota_exceeded(sandbox)
                yield item
        finally:  # also when the reader goes away (a closed SSE, Stop in the UI): the command is killed
            await stop(upcoming)
            await stop(watcher)
            await stream.aclose()  # type: ignore[attr-defined]

    async def _disk_quota_exceeded(self, sandbox: Sandbox) -> None:
        await self._destroy(sandbox, reason="disk quota exceeded")
        raise QuotaExceededError(f"the workspace passed its {sandbox.disk_mb} MB quota; the sandbox was destroyed",
                                 code="disk_quota")  # fmt: skip

    async def _checked_path(self, sandbox: Sandbox, path: str | None) -> str:
        """The path inside /workspace, with symlinks followed by the sandbox itself: links out are refused."""
        wanted = workspace_path(path)
        assert sandbox.ref is not None
        real = await self.backend.resolve(sandbox.ref, wanted)
        if real != WORKSPACE and not real.startswith(WORKSPACE + "/"):
            raise ValidationFailedError("the path leads out of /workspace", code="path_outside_workspace")
        return real

    async def read(self, user_id: str, sandbox_id: str, path: str | None) -> bytes | builtins.list[FileEntry]:
        """A file's bytes, or a directory's entries."""
        sandbox = await self._live(user_id, sandbox_id)
        real = await self._checked_path(sandbox, path)
        assert sandbox.ref is not None
        try:
            return await self.backend.list_dir(sandbox.ref, real)
        except InvalidRequestError as exc:
            if exc.code != "not_a_directory":
                raise
            return await self.backend.get_file(sandbox.ref, real)

    async def write(self, user_id: str, sandbox_id: str, path: str | None, data: bytes) -> FileEntry:
        sandbox = await self._live(user_id, sandbox_id)
        if not path or workspace_path(path) == WORKSPACE:
            raise ValidationFailedError("give the file's path", code="path_required")
        real = await self._checked_path(sandbox, path)
        assert sandbox.ref is not None
        used = await self.backend.disk_usage(sandbox.ref)
        if used + len(data) > sandbox.disk_mb * 2**20:
            raise QuotaExceededError(f"the workspace quota is {sandbox.disk_mb} MB", code="disk_quota")
        await self.backend.put_file(sandbox.ref, real, data)
        name = posixpath.basename(real)
        entries = await self.backend.list_dir(sandbox.ref, posixpath.dirname(real))
        written = next((entry for entry in entries if entry.name == name), None)
        if written is None:  # a command in the sandbox removed it at once
            raise ConflictError("the file was removed as it was written", code="path_conflict")
        return written
