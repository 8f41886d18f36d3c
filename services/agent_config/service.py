"""Describes the instance to clients. Each capability reports itself here as it lands."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.auth.scopes import Scope
from services.chat.tools import ToolRegistry
from services.db.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from services.llm import ModelInfo, ModelRegistry
from services.sandbox import SandboxService


class ToolInfo(BaseModel):
    name: str
    description: str
    group: str
    source: str


class Capability(BaseModel):
    enabled: bool
    detail: str | None = None


class AgentConfig(BaseModel):
    version: str
    models: list[ModelInfo] = Field(default_factory=list)
    default_model: str | None = None
    tool_groups: list[str] = Field(default_factory=list)
    tools: list[ToolInfo] = Field(default_factory=list)
    capabilities: dict[str, Capability]
    api_key_scopes: list[str]
    registration_open: bool
    limits: dict[str, int]


PLANNED = "not available in this version yet"


class AgentConfigService:
    def __init__(
        self,
        *,
        version: str,
        registration_open: bool,
        models: ModelRegistry,
        tools: ToolRegistry,
        sandboxes: SandboxService | None,
    ) -> None:
        self._sandboxes = sandboxes
        self._version = version
        self._registration_open = registration_open
        self._models = models
        self._tools = tools

    def describe(self) -> AgentConfig:
        capabilities = {name: Capability(enabled=False, detail=PLANNED) for name in ("generation", "mcp", "rag", "tts")}
        capabilities["credits"] = Capability(enabled=True)
        capabilities["sandboxes"] = Capability(
            enabled=self._sandboxes is not None,
            detail=self._sandboxes.describe() if self._sandboxes else "disabled",
        )
        capabilities["chat"] = Capability(enabled=bool(self._models.models()), detail=None)
        return AgentConfig(
            version=self._version,
            models=self._models.models(),
            default_model=self._models.default_model,
            tool_groups=self._tools.groups(),
            tools=[
                ToolInfo(name=t.name, description=t.description, group=t.group.value, source=t.source)
                for t in self._tools.tools.values()
            ],
            capabilities=capabilities,
            api_key_scopes=[scope.value for scope in Scope],
            registration_open=self._registration_open,
            limits={"page_size_default": DEFAULT_PAGE_SIZE, "page_size_max": MAX_PAGE_SIZE},
        )
