"""How a capability (chat, sandboxes, and later RAG, MCP, TTS, generation) plugs into the core.

A capability is built from the :class:`Core` (the seams every capability shares: database, credits, runs, jobs,
artifacts, metered model calls, the tool catalog) and tells the core what it adds: its services, start and stop,
health, what it shows in ``/config``, tool providers, run kinds and job kinds. The composition root lists the
capabilities; health, config, tools, jobs and (in the web layer) routers, pages and navigation loop over them.
See docs/capabilities.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from services.artifacts import ArtifactService
from services.auth import ApiKeyService, AuthService
from services.credits import CreditService
from services.db.database import Database
from services.instances import InstanceLease, LiveInstances
from services.jobs import JobKind, JobService
from services.llm import ModelRegistry
from services.llm.metered import ModelCalls
from services.provisioning import Provisioner, Provisioners
from services.references import References
from services.runs import RunKind, RunService
from services.settings import Settings
from services.sources import Sources
from services.tools import ToolCatalog, ToolProvider
from services.vault import Vault

DependencyStatus = Literal["ok", "down", "not_configured", "starting", "idle"]


class DependencyHealth(BaseModel):
    status: DependencyStatus
    detail: str | None = None
    latency_ms: float | None = None


class CapabilityInfo(BaseModel):
    """What ``/config`` says of a capability."""

    enabled: bool
    detail: str | None = None
    settings: dict[str, Any] | None = None


@dataclass(frozen=True)
class Core:
    """The seams every capability is built on. Built once by the composition root; opens nothing."""

    settings: Settings
    secret: bytes
    version: str
    db: Database
    instance: InstanceLease
    auth: AuthService
    api_keys: ApiKeyService
    credits: CreditService
    runs: RunService
    jobs: JobService
    artifacts: ArtifactService
    models: ModelRegistry
    calls: ModelCalls
    tools: ToolCatalog
    # Who owns an id of another capability (a chat session, a run): capabilities register a resolver for their
    # id prefix and ask ``ensure_owned`` before storing a link to an object they do not own.
    references: References
    # Credentials at rest (a user's API keys for tools, a server's headers): seal before storing, open to use.
    vault: Vault
    # Capabilities that prepare a user's new sandbox (files in its home, mounts) and tidy up after it.
    provisioners: Provisioners
    # Passages of a user's documents for work grounded in them (RAG registers the reader).
    sources: Sources


class Capability:
    """A capability overrides what it adds; the defaults add nothing."""

    name: ClassVar[str]

    def services(self) -> list[object]:
        """The services the web layer may ask for by type (``Services.get(SandboxService)``)."""
        return []

    async def start(self) -> None:
        """Open what the capability needs (after the database and the core started)."""

    async def stop(self) -> None:
        """Close it again (before the core stops)."""

    async def health(self) -> dict[str, DependencyHealth]:
        """The dependencies it reports in ``/health``, by name. Never starts anything."""
        return {}

    def info(self) -> CapabilityInfo:
        return CapabilityInfo(enabled=True)

    def tool_providers(self) -> list[ToolProvider]:
        return []

    def provisioners(self) -> list[Provisioner]:
        """What prepares a user's new sandbox (services/provisioning.py)."""
        return []

    def run_kinds(self) -> list[RunKind]:
        return []

    def job_kinds(self) -> list[JobKind[Any]]:
        return []

    async def recover(self, live: LiveInstances) -> None:
        """Work of instances that died (called at start and after each heartbeat, see services.instances)."""


CapabilityFactory = Callable[[Core], Capability]
