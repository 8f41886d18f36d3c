"""The typed set of services the web layer uses, built once by the composition root from the core seams and
the capabilities it lists."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TypeVar

from services.agent_config import AgentConfigService
from services.artifacts import ArtifactService, DiskArtifactStore
from services.auth import ApiKeyService, AuthService
from services.auth.cache import PrincipalCache
from services.auth.passwords import Passwords
from services.auth.tokens import TokenDigester
from services.capabilities import Capability, CapabilityFactory, Core
from services.credits import CreditService
from services.db import Database
from services.errors import UpstreamUnavailableError
from services.health import HealthService
from services.instances import InstanceLease
from services.jobs import JobService
from services.llm import LocalModelRunner, ModelRegistry
from services.llm.metered import ModelCalls
from services.provisioning import Provisioners
from services.references import References, row_owner, run_describer
from services.runs import Run, RunService
from services.security import derive_key
from services.settings import Settings
from services.sources import Sources
from services.tools import ToolCatalog
from services.vault import Vault

T = TypeVar("T")


def app_version() -> str:
    try:
        return version("agent-ui")
    except PackageNotFoundError:
        return "0.0.0+local"


class CapabilityUnavailableError(UpstreamUnavailableError):
    """A capability this instance does not run (disabled in the settings, or not installed)."""

    code = "capability_unavailable"


@dataclass(frozen=True)
class Services:
    core: Core
    capabilities: tuple[Capability, ...]
    health: HealthService
    agent_config: AgentConfigService
    _by_type: dict[type, object] = field(default_factory=dict)
    _started: asyncio.Event = field(default_factory=asyncio.Event)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _starting: asyncio.Lock = field(default_factory=asyncio.Lock)

    # The core seams, typed, for the web layer.
    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def db(self) -> Database:
        return self.core.db

    @property
    def auth(self) -> AuthService:
        return self.core.auth

    @property
    def api_keys(self) -> ApiKeyService:
        return self.core.api_keys

    @property
    def credits(self) -> CreditService:
        return self.core.credits

    @property
    def runs(self) -> RunService:
        return self.core.runs

    @property
    def jobs(self) -> JobService:
        return self.core.jobs

    @property
    def artifacts(self) -> ArtifactService:
        return self.core.artifacts

    @property
    def models(self) -> ModelRegistry:
        return self.core.models

    @property
    def tools(self) -> ToolCatalog:
        return self.core.tools

    def find(self, kind: type[T]) -> T | None:
        """The service of that type a capability provides, or None when no capability here provides it."""
        found = self._by_type.get(kind)
        return found if isinstance(found, kind) else None

    def get(self, kind: type[T], unavailable: str | None = None, *, code: str | None = None) -> T:
        """The service of that type; 503 when this instance does not run the capability providing it (with the
        capability's own message and code when given: "RAG is disabled on this instance", ``rag_disabled``)."""
        found = self.find(kind)
        if found is None:
            raise CapabilityUnavailableError(unavailable or f"{kind.__name__} is not available on this instance",
                                             code=code)  # fmt: skip
        return found

    async def start(self) -> None:
        """Open connections, run migrations, start capabilities, recover the work of instances that died.
        Runs once however often it is called (the FastAPI lifespan and NiceGUI's startup hook both call it)."""
        async with self._starting:
            if self._started.is_set():
                return
            await self._start()
            self._started.set()

    async def _start(self) -> None:
        core = self.core
        await core.db.start()
        await core.auth.purge_expired()
        if (runner := core.models.local_runner()) is not None:
            runner.reap_stale()
        await core.instance.start()
        await core.runs.start()
        await core.credits.start()
        await core.artifacts.start()
        for capability in self.capabilities:
            await capability.start()
        await core.instance.begin_recovery()
        await core.models.preload()
        # What start-up built lives as long as the process: keep it out of every later collection, so that a full
        # collection under load scans only what requests allocate (it had stalled every stream ~200 ms).
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        """Stop runs (saving what they have), capabilities, then the core. Runs once, like start."""
        async with self._starting:
            if self._stopped.is_set():
                return
            self._stopped.set()
            await self._stop()

    async def _stop(self) -> None:
        core = self.core
        await core.jobs.stop()
        await core.runs.stop()
        for capability in reversed(self.capabilities):
            await capability.stop()
        await core.artifacts.stop()
        await core.credits.stop()
        await core.instance.stop()
        await core.models.close()
        await core.db.stop()


def build_core(settings: Settings, secret: bytes, *, passwords: Passwords | None = None) -> Core:
    """The seams every capability is built on. Builds objects; opens nothing. ``passwords`` is for tests (a cheap
    hash); the product always hashes with argon2id's default cost."""
    db = Database(settings.resolved_database_url(), settings.db)
    instance = InstanceLease(db=db, settings=settings.instance)
    digester = TokenDigester(derive_key(secret, "token-digest"))
    principals = PrincipalCache(settings.auth.principal_cache_s)
    references = References()
    references.register("run", row_owner(db, Run), describe=run_describer(db, references))
    credits = CreditService(db=db, settings=settings.credits, owner=instance.id, references=references)
    runs = RunService(db=db, owner=instance.id, settings=settings.runs,
                      flush_interval_s=settings.chat.event_flush_interval_ms / 1000)  # fmt: skip
    artifacts = ArtifactService(db=db, store=DiskArtifactStore(settings.data_dir / "artifacts"), runs=runs)
    runner = LocalModelRunner(settings.llm.local, run_dir=settings.data_dir / "run")
    models = ModelRegistry(settings.llm, local_runner=runner)
    calls = ModelCalls(db=db, models=models, credits=credits)
    jobs = JobService(db=db, runs=runs, artifacts=artifacts, credits=credits, calls=calls, settings=settings.jobs)
    auth = AuthService(db=db, digester=digester, settings=settings.auth, principals=principals, passwords=passwords,
                       on_register=credits.open_account)  # fmt: skip
    vault = Vault(secret, [old.get_secret_value().encode() for old in settings.previous_secret_keys])
    return Core(settings=settings, secret=secret, version=app_version(), db=db, instance=instance, auth=auth,
                api_keys=ApiKeyService(db=db, digester=digester, principals=principals), credits=credits, runs=runs,
                jobs=jobs, artifacts=artifacts, models=models, calls=calls, tools=ToolCatalog(),
                references=references, provisioners=Provisioners(), sources=Sources(), vault=vault)  # fmt: skip


def build_services(
    settings: Settings,
    secret: bytes,
    capabilities: Sequence[CapabilityFactory],
    *,
    passwords: Passwords | None = None,
) -> Services:
    """The core, then each capability built on it and plugged in: its run kinds, job kinds, tool providers,
    recovery and services. Builds objects; opens nothing. ``passwords``: see :func:`build_core`."""
    core = build_core(settings, secret, passwords=passwords)
    built = tuple(factory(core) for factory in capabilities)
    by_type: dict[type, object] = {}
    for capability in built:
        for kind in capability.run_kinds():
            core.runs.register_kind(kind)
        for job_kind in capability.job_kinds():
            core.jobs.register(job_kind)
        for provider in capability.tool_providers():
            core.tools.add(provider)
        for provisioner in capability.provisioners():
            core.provisioners.add(provisioner)
        for service in capability.services():
            by_type[type(service)] = service
    # Recovery order: runs first (their kinds tidy up), then each capability (sandboxes settle their minutes),
    # then what holds are left.
    core.instance.on_recover("runs", core.runs.recover)
    for capability in built:
        core.instance.on_recover(capability.name, capability.recover)
    core.instance.on_recover("credit holds", core.credits.release_orphaned)
    health = HealthService(db=core.db, models=core.models, capabilities=built, version=core.version,
                           started_at=time.monotonic())  # fmt: skip
    agent_config = AgentConfigService(version=core.version, registration_open=settings.auth.allow_registration,
                                      models=core.models, tools=core.tools, capabilities=built)  # fmt: skip
    return Services(core=core, capabilities=built, health=health, agent_config=agent_config, _by_type=by_type)
