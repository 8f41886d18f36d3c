"""Application settings: one typed object read once at start, handed out by section.

Environment variables use the prefix ``AGENT_UI_`` and ``__`` between a section and its field
(``AGENT_UI_AUTH__SESSION_TTL_HOURS``). ``DATABASE_URL`` is also read without the prefix, as
hosting platforms set it. A ``.env`` file in the working directory is read too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "agent-ui"


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    title: str = "agent-ui"


class DatabaseSettings(BaseModel):
    echo: bool = False
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=10, ge=1)


class AuthSettings(BaseModel):
    session_ttl_hours: int = Field(default=24 * 14, ge=1)
    cookie_secure: bool = False
    allow_registration: bool = True
    api_key_last_used_interval_s: int = Field(default=60, ge=0)
    login_ticket_ttl_s: int = Field(default=60, ge=5)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AGENT_UI_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AGENT_UI_DATABASE_URL", "DATABASE_URL")
    )
    secret_key: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    db: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()

    def resolved_database_url(self) -> str:
        """DATABASE_URL as given, or the SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'agent-ui.db'}"
