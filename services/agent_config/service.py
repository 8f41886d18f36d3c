"""Describes the instance to clients: models, tools the caller may use, capabilities, limits."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from services.auth.schemas import Principal
from services.auth.scopes import Scope
from services.capabilities import Capability, CapabilityInfo
from services.db.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from services.llm import ModelInfo, ModelRegistry
from services.tools import ToolCatalog


class ToolInfo(BaseModel):
    name: str
    description: str
    group: str
    source: str
    parameters: dict[str, object]


class ToolGroupInfo(BaseModel):
    name: str
    scope: str
    description: str
    allowed: bool = Field(description="whether the caller's scopes allow it")


class AgentConfig(BaseModel):
    version: str
    models: list[ModelInfo] = Field(default_factory=list)
    default_model: str | None = None
    tool_groups: list[str] = Field(default_factory=list, description="the groups the caller may ask for")
    tool_group_details: list[ToolGroupInfo] = Field(default_factory=list)
    tools: list[ToolInfo] = Field(default_factory=list, description="the tools the caller's chat turns are offered")
    capabilities: dict[str, CapabilityInfo]
    api_key_scopes: list[str]
    registration_open: bool
    limits: dict[str, int]


# Capabilities not built yet: listed so clients see the whole shape of the product.
PLANNED = ("generation", "mcp", "rag", "tts")


class AgentConfigService:
    def __init__(
        self,
        *,
        version: str,
        registration_open: bool,
        models: ModelRegistry,
        tools: ToolCatalog,
        capabilities: Sequence[Capability],
    ) -> None:
        self._version = version
        self._registration_open = registration_open
        self._models = models
        self._tools = tools
        self._capabilities = capabilities

    async def describe(self, principal: Principal) -> AgentConfig:
        capabilities = {name: CapabilityInfo(enabled=False, detail="not available in this version yet")
                        for name in PLANNED}  # fmt: skip
        capabilities["credits"] = CapabilityInfo(enabled=True)
        for capability in self._capabilities:
            capabilities[capability.name] = capability.info()
        allowed = self._tools.allowed_groups(principal)
        tools = await self._tools.tools_for(principal)
        return AgentConfig(
            version=self._version,
            models=self._models.models(),
            default_model=self._models.default_model,
            tool_groups=sorted(allowed),
            tool_group_details=[
                ToolGroupInfo(name=g.name, scope=g.scope, description=g.description, allowed=g.name in allowed)
                for g in self._tools.groups()
            ],
            tools=[
                ToolInfo(name=t.name, description=t.description, group=t.group.name, source=t.source,
                         parameters=t.parameters)
                for t in tools
            ],
            capabilities=capabilities,
            api_key_scopes=[scope.value for scope in Scope],
            registration_open=self._registration_open,
            limits={"page_size_default": DEFAULT_PAGE_SIZE, "page_size_max": MAX_PAGE_SIZE},
        )
