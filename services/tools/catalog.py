"""The one place turns get their tools from: groups registered by providers, checked against the caller."""

from __future__ import annotations

import asyncio
import logging

from services.auth.schemas import Principal
from services.auth.scopes import grants
from services.errors import PermissionDeniedError, ValidationFailedError
from services.tools.base import Tool, ToolGroup, ToolProvider

log = logging.getLogger(__name__)


class ToolCatalog:
    def __init__(self) -> None:
        self._providers: list[ToolProvider] = []
        self._groups: dict[str, ToolGroup] = {}

    def add(self, provider: ToolProvider) -> None:
        for group in provider.groups():
            known = self._groups.get(group.name)
            if known is not None and known.scope != group.scope:
                raise ValueError(f"tool group {group.name!r} is registered with two scopes")
            self._groups.setdefault(group.name, group)
        self._providers.append(provider)

    def groups(self) -> list[ToolGroup]:
        return sorted(self._groups.values(), key=lambda group: group.name)

    def allowed_groups(self, principal: Principal) -> set[str]:
        return {name for name, group in self._groups.items() if grants(principal.scopes, group.scope)}

    def resolve_groups(self, principal: Principal, requested: list[str] | None) -> set[str]:
        """The groups a turn gets: what it asked for (422 for an unknown group, 403 for one the caller's scopes
        do not allow), or by default every group the caller may use."""
        if requested is None:
            return self.allowed_groups(principal)
        unknown = sorted(set(requested) - set(self._groups))
        if unknown:
            raise ValidationFailedError(
                f"unknown tool group {unknown[0]!r}; known: {', '.join(sorted(self._groups))}",
                code="unknown_tool_group", details={"unknown": unknown},
            )  # fmt: skip
        denied = sorted(set(requested) - self.allowed_groups(principal))
        if denied:
            scope = self._groups[denied[0]].scope
            raise PermissionDeniedError(
                f"this API key lacks the '{scope}' scope the tool group {denied[0]!r} needs",
                code="insufficient_scope", details={"groups": denied},
            )  # fmt: skip
        return set(requested)

    async def tools_for(self, principal: Principal, groups: set[str] | None = None) -> list[Tool]:
        """The tools of ``groups`` (default: every allowed group) the providers offer this caller; never one
        whose group the caller's scopes do not allow."""
        wanted = self.allowed_groups(principal) if groups is None else groups & self.allowed_groups(principal)
        providers = [p for p in self._providers if any(g.name in wanted for g in p.groups())]
        offered = await asyncio.gather(*(provider.tools_for(principal) for provider in providers))
        tools: dict[str, Tool] = {}
        for tool in (tool for batch in offered for tool in batch):
            if tool.group.name not in wanted or not grants(principal.scopes, tool.scope):
                continue
            if tool.name in tools:
                log.warning("tool %s is offered twice; keeping the first (%s)", tool.name, tools[tool.name].source)
                continue
            tools[tool.name] = tool
        return list(tools.values())
