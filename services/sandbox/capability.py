"""Sandboxes as a capability: the lifecycle service on the chosen backend, its health, and the session tools."""

from __future__ import annotations

import asyncio
import math
import time

from services.capabilities import Capability, CapabilityInfo, Core, DependencyHealth
from services.instances import LiveInstances
from services.references import row_describer, row_owner
from services.sandbox import SandboxService, make_backends
from services.sandbox.models import Sandbox
from services.sandbox.tools import SessionSandboxTools
from services.security import derive_key
from services.tools import ToolProvider


def _label(sandbox: Sandbox) -> str:
    """A charge's label, e.g. "Sandbox python: 12 min": the minutes charged (at least one, as the service does)."""
    if sandbox.destroyed_at is None:
        return f"Sandbox {sandbox.template}"
    lived = (min(sandbox.destroyed_at, sandbox.expires_at) - sandbox.created_at).total_seconds()
    return f"Sandbox {sandbox.template}: {max(1, math.ceil(lived / 60))} min"


class SandboxCapability(Capability):
    name = "sandboxes"

    def __init__(self, core: Core) -> None:
        settings = core.settings
        # The deployment's label (from the secret: deployments sharing an engine keep apart) and this process.
        deployment = derive_key(core.secret, "instance").hex()[:16]
        backends = make_backends(settings.sandbox, instance=deployment, owner=core.instance.id,
                                 data_dir=settings.data_dir)  # fmt: skip
        self.service: SandboxService | None = None
        if backends:
            self.service = SandboxService(db=core.db, backends=backends, credits=core.credits,
                                          references=core.references, settings=settings.sandbox,
                                          provisioners=core.provisioners,
                                          prices=settings.credits, owner=core.instance.id)  # fmt: skip
            core.provisioners.serve_processes(self.service.open_process)
        # Whose a sandbox is (a user's MCP server runs in one of theirs), and what the credits statement calls
        # its charge.
        core.references.register("sbx", row_owner(core.db, Sandbox), describe=row_describer(core.db, Sandbox, _label))

    def services(self) -> list[object]:
        return [self.service] if self.service is not None else []

    async def start(self) -> None:
        if self.service is not None:
            await self.service.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    async def recover(self, live: LiveInstances) -> None:
        if self.service is not None:
            await self.service.recover(live)

    def info(self) -> CapabilityInfo:
        if self.service is None:
            return CapabilityInfo(enabled=False, detail="disabled")
        return CapabilityInfo(enabled=True, detail=self.service.describe())

    async def health(self) -> dict[str, DependencyHealth]:
        """The sandbox backend in use, why it was chosen, and whether it answers now (reported as "docker")."""
        if self.service is None:
            return {"docker": DependencyHealth(status="not_configured", detail="sandboxes are disabled")}
        backend = self.service.backend
        started = time.perf_counter()
        try:
            async with asyncio.timeout(2):
                await backend.ping()
        except Exception as exc:  # health reports, never raises
            detail = f"{backend.kind} backend: {getattr(exc, 'message', exc)}"
            return {"docker": DependencyHealth(status="down", detail=detail)}
        latency = round((time.perf_counter() - started) * 1000, 2)
        return {"docker": DependencyHealth(status="ok", detail=self.service.describe(), latency_ms=latency)}

    def tool_providers(self) -> list[ToolProvider]:
        return [SessionSandboxTools(sandboxes=self.service)] if self.service is not None else []
