"""Describes the instance to clients. Each capability reports itself here as it lands."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.auth.scopes import Scope
from services.db.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


class ModelInfo(BaseModel):
    id: str
    provider: str
    context_window: int | None = None
    price_per_1k_prompt: float | None = None
    price_per_1k_completion: float | None = None


class Capability(BaseModel):
    enabled: bool
    detail: str | None = None


class AgentConfig(BaseModel):
    version: str
    models: list[ModelInfo] = Field(default_factory=list)
    default_model: str | None = None
    tool_groups: list[str] = Field(default_factory=list)
    capabilities: dict[str, Capability]
    api_key_scopes: list[str]
    registration_open: bool
    limits: dict[str, int]


PLANNED = "not available in this version yet"


class AgentConfigService:
    def __init__(self, *, version: str, registration_open: bool) -> None:
        self._version = version
        self._registration_open = registration_open

    def describe(self) -> AgentConfig:
        capabilities = {
            name: Capability(enabled=False, detail=PLANNED)
            for name in ("chat", "generation", "sandboxes", "mcp", "rag", "tts", "credits")
        }
        return AgentConfig(
            version=self._version,
            capabilities=capabilities,
            api_key_scopes=[scope.value for scope in Scope],
            registration_open=self._registration_open,
            limits={"page_size_default": DEFAULT_PAGE_SIZE, "page_size_max": MAX_PAGE_SIZE},
        )
