"""The typed set of services the web layer uses, built once by the composition root."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from services.agent_config import AgentConfigService
from services.auth import ApiKeyService, AuthService
from services.auth.cache import PrincipalCache
from services.auth.tokens import TokenDigester
from services.chat import ChatService, SessionMetricsMeter, ToolRegistry, builtin_tools
from services.credits import CreditMeter, CreditService
from services.db import Database
from services.health import HealthService
from services.llm import LocalModelRunner, ModelRegistry
from services.runs import RunService
from services.sandbox import SandboxService, make_backends
from services.sandbox.tools import SessionSandboxTools
from services.security import derive_key
from services.settings import Settings


def app_version() -> str:
    try:
        return version("agent-ui")
    except PackageNotFoundError:
        return "0.0.0+local"


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    auth: AuthService
    api_keys: ApiKeyService
    agent_config: AgentConfigService
    health: HealthService
    models: ModelRegistry
    tools: ToolRegistry
    runs: RunService
    chat: ChatService
    credits: CreditService
    sandboxes: SandboxService | None
    _started: asyncio.Event = field(default_factory=asyncio.Event)
    _starting: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def start(self) -> None:
        """Open connections, run migrations, recover from a crash. Runs once however often it is called
        (the FastAPI lifespan and NiceGUI's startup hook both call it)."""
        async with self._starting:
            if self._started.is_set():
                return
            await self._start()
            self._started.set()

    async def _start(self) -> None:
        await self.db.start()
        await self.auth.purge_expired()
        if (runner := self.models.local_runner()) is not None:
            runner.reap_stale()
        await self.runs.start()
        await self.chat.recover_interrupted()
        await self.credits.start()
        if self.sandboxes is not None:
            await self.sandboxes.start()

    async def stop(self) -> None:
        await self.chat.shutdown()
        if self.sandboxes is not None:
            await self.sandboxes.stop()
        await self.credits.stop()
        await self.runs.stop()
        await self.models.close()
        await self.db.stop()


def build_services(settings: Settings, secret: bytes) -> Services:
    """Wire every service with only what it needs. Builds objects; opens nothing."""
    db = Database(settings.resolved_database_url(), settings.db)
    digester = TokenDigester(derive_key(secret, "token-digest"))
    principals = PrincipalCache(settings.auth.principal_cache_s)
    current_version = app_version()
    runner = LocalModelRunner(settings.llm.local, run_dir=settings.data_dir / "run")
    models = ModelRegistry(settings.llm, local_runner=runner)
    tools = ToolRegistry()
    for tool in builtin_tools():
        tools.register(tool)
    runs = RunService(db=db, flush_interval_s=settings.chat.event_flush_interval_ms / 1000)
    credits = CreditService(db=db, settings=settings.credits)
    meter = CreditMeter(db=db, credits=credits, metrics=SessionMetricsMeter(db=db))
    backends = make_backends(
        settings.sandbox, instance=derive_key(secret, "instance").hex()[:16], data_dir=settings.data_dir
    )
    sandboxes = (
        SandboxService(db=db, backends=backends, credits=credits, settings=settings.sandbox, prices=settings.credits)
        if backends
        else None
    )
    if sandboxes is not None:
        for tool in SessionSandboxTools(db=db, sandboxes=sandboxes).tools():
            tools.register(tool)
    chat = ChatService(
        db=db,
        runs=runs,
        models=models,
        tools=tools,
        meter=meter,
        settings=settings.chat,
    )
    return Services(
        settings=settings,
        db=db,
        auth=AuthService(
            db=db, digester=digester, settings=settings.auth, principals=principals, on_register=credits.open_account
        ),
        api_keys=ApiKeyService(db=db, digester=digester, principals=principals),
        agent_config=AgentConfigService(
            version=current_version,
            registration_open=settings.auth.allow_registration,
            models=models,
            tools=tools,
            sandboxes=sandboxes,
        ),
        health=HealthService(
            db=db, models=models, sandboxes=sandboxes, version=current_version, started_at=time.monotonic()
        ),
        models=models,
        tools=tools,
        runs=runs,
        chat=chat,
        credits=credits,
        sandboxes=sandboxes,
    )
