"""The typed set of services the web layer uses, built once by the composition root."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from services.agent_config import AgentConfigService
from services.auth import ApiKeyService, AuthService
from services.auth.tokens import TokenDigester
from services.db import Database
from services.health import HealthService
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

    async def start(self) -> None:
        """Open connections and run migrations; called from the app's startup handler."""
        await self.db.start()
        await self.auth.purge_expired()

    async def stop(self) -> None:
        await self.db.stop()


def build_services(settings: Settings, secret: bytes) -> Services:
    """Wire every service with only what it needs. Builds objects; opens nothing."""
    db = Database(settings.resolved_database_url(), settings.db)
    digester = TokenDigester(derive_key(secret, "token-digest"))
    current_version = app_version()
    return Services(
        settings=settings,
        db=db,
        auth=AuthService(db=db, digester=digester, settings=settings.auth),
        api_keys=ApiKeyService(db=db, digester=digester),
        agent_config=AgentConfigService(version=current_version, registration_open=settings.auth.allow_registration),
        health=HealthService(db=db, version=current_version, started_at=time.monotonic()),
    )
